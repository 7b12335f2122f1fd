<?php
/**
 * What the shopper types at checkout, before any order exists: email, phone and, when the
 * settings add them, the "email me" / "text me" opt-in boxes. Captured from the classic
 * checkout (assets/capture.js posts each change; WooCommerce's own order review refresh posts
 * the whole form) and from the block checkout (the Store API's customer update). Kept in the
 * session, sent with the next snapshot.
 *
 * @package CartbandsCarts
 */

defined( 'ABSPATH' ) || exit;

const CARTBANDS_CARTS_FIELDS = array( 'billing_email', 'billing_phone', 'cartbands_email_consent', 'cartbands_sms_consent' );

/**
 * Keeps the given checkout fields in the session's contact and marks the cart changed.
 * Absent fields keep their value; an invalid email or phone is no contact.
 *
 * @param array $fields Raw (unslashed) values by field name.
 */
function cartbands_carts_capture( array $fields ): void {
	$session = function_exists( 'WC' ) ? ( WC()->session ?? null ) : null;
	if ( ! is_object( $session ) ) {
		return;
	}
	$typed = (array) ( $session->get( 'cartbands_contact' ) ?? array() );
	if ( array_key_exists( 'billing_email', $fields ) ) {
		$email          = sanitize_email( (string) $fields['billing_email'] );
		$typed['email'] = is_email( $email ) ? $email : '';
	}
	if ( array_key_exists( 'billing_phone', $fields ) ) {
		$phone          = preg_replace( '/[^0-9+]/', '', (string) $fields['billing_phone'] );
		$typed['phone'] = strlen( ltrim( $phone, '+' ) ) >= 6 ? $phone : '';
	}
	if ( cartbands_carts_settings()['consent_fields'] ) {
		foreach ( array( 'email', 'sms' ) as $channel ) {
			$typed[ "{$channel}_consent" ] = '1' === (string) ( $fields[ "cartbands_{$channel}_consent" ] ?? '' );
		}
	}
	$session->set( 'cartbands_contact', $typed );
	cartbands_carts_touch();
}

/** admin-ajax.php?action=cartbands_carts_capture, posted by assets/capture.js. */
function cartbands_carts_ajax_capture(): void {
	check_ajax_referer( 'cartbands_carts_capture', 'nonce' );
	$fields = array();
	foreach ( CARTBANDS_CARTS_FIELDS as $name ) {
		if ( isset( $_POST[ $name ] ) ) {
			$fields[ $name ] = wp_unslash( $_POST[ $name ] ); // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- sanitized in cartbands_carts_capture().
		}
	}
	cartbands_carts_capture( $fields );
	wp_send_json_success();
}

/**
 * WooCommerce's order review refresh (classic checkout) carries the whole form, URL-encoded.
 *
 * @param string $posted The form (`post_data`, unslashed).
 */
function cartbands_carts_order_review( $posted ): void {
	$fields = array();
	parse_str( (string) $posted, $fields );
	$fields = array_intersect_key( $fields, array_flip( CARTBANDS_CARTS_FIELDS ) );
	if ( cartbands_carts_settings()['consent_fields'] ) {
		// An unticked box is not in a posted form: absent is "no".
		$fields += array(
			'cartbands_email_consent' => '',
			'cartbands_sms_consent'   => '',
		);
	}
	cartbands_carts_capture( array_map( 'strval', array_filter( $fields, 'is_scalar' ) ) );
}

/**
 * The block checkout saved what the shopper typed into the session's customer.
 *
 * @param WC_Customer $customer The customer.
 */
function cartbands_carts_store_api_customer( $customer ): void {
	if ( is_object( $customer ) ) {
		cartbands_carts_capture(
			array(
				'billing_email' => (string) $customer->get_billing_email(),
				'billing_phone' => (string) $customer->get_billing_phone(),
			)
		);
	}
}

/**
 * The opt-in boxes on the classic checkout form, when the settings ask for them. WooCommerce
 * keeps their values on the order as meta (`_cartbands_email_consent`...), a record of consent.
 *
 * @param array $fields The checkout fields by group.
 */
function cartbands_carts_consent_fields( $fields ): array {
	$fields = (array) $fields;
	if ( ! cartbands_carts_settings()['consent_fields'] ) {
		return $fields;
	}
	$fields['billing']['cartbands_email_consent'] = array(
		'type'     => 'checkbox',
		'label'    => __( 'Email me about my cart and offers', 'cartbands-carts' ),
		'required' => false,
		'priority' => 125,
	);
	$fields['billing']['cartbands_sms_consent']   = array(
		'type'     => 'checkbox',
		'label'    => __( 'Text me about my cart (reply STOP to opt out)', 'cartbands-carts' ),
		'required' => false,
		'priority' => 126,
	);
	return $fields;
}

/** The capture script, on the checkout page only. */
function cartbands_carts_enqueue(): void {
	if ( ! cartbands_carts_configured() || ! function_exists( 'is_checkout' ) || ! is_checkout() ) {
		return;
	}
	wp_enqueue_script( 'cartbands-carts-capture', plugins_url( 'assets/capture.js', CARTBANDS_CARTS_FILE ), array(), CARTBANDS_CARTS_VERSION, true );
	wp_localize_script(
		'cartbands-carts-capture',
		'cartbandsCarts',
		array(
			'url'   => admin_url( 'admin-ajax.php' ),
			'nonce' => wp_create_nonce( 'cartbands_carts_capture' ),
		)
	);
}
