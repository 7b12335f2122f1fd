<?php
/**
 * The settings (one option, `cartbands_carts_settings`) and their page under WooCommerce.
 *
 * @package CartbandsCarts
 */

defined( 'ABSPATH' ) || exit;

const CARTBANDS_CARTS_OPTION = 'cartbands_carts_settings';

/**
 * The settings with their defaults.
 *
 * @return array{gateway_url: string, secret: string, store: string, meta_key: string, consent_fields: bool, restore_days: int}
 */
function cartbands_carts_settings(): array {
	$saved = get_option( CARTBANDS_CARTS_OPTION, array() );
	$saved = is_array( $saved ) ? $saved : array();
	return array(
		'gateway_url'    => (string) ( $saved['gateway_url'] ?? '' ),
		'secret'         => (string) ( $saved['secret'] ?? '' ),
		'store'          => (string) ( $saved['store'] ?? '' ),
		'meta_key'       => (string) ( $saved['meta_key'] ?? '_cartbands_checkout' ),
		'consent_fields' => (bool) ( $saved['consent_fields'] ?? false ),
		'restore_days'   => max( 1, (int) ( $saved['restore_days'] ?? 14 ) ),
	);
}

/** Whether there is somewhere to send carts to. */
function cartbands_carts_configured(): bool {
	$settings = cartbands_carts_settings();
	return '' !== $settings['gateway_url'] && '' !== $settings['secret'] && '' !== $settings['store'];
}

/** The page under the WooCommerce menu. */
function cartbands_carts_admin_menu(): void {
	add_submenu_page(
		'woocommerce',
		'Cartbands carts',
		'Cartbands carts',
		'manage_woocommerce',
		'cartbands-carts',
		'cartbands_carts_settings_page'
	);
}

/**
 * The cleaned settings from a submitted form. The secret is never shown on the page, so an
 * empty secret field keeps the saved one; an unusable URL or meta key is no value.
 *
 * @param array $form The submitted fields, unslashed.
 * @return array The settings to save.
 */
function cartbands_carts_clean_settings( array $form ): array {
	$current = cartbands_carts_settings();
	$secret  = trim( (string) ( $form['secret'] ?? '' ) );
	$url     = esc_url_raw( trim( (string) ( $form['gateway_url'] ?? '' ) ), array( 'https', 'http' ) );
	$key     = sanitize_key( (string) ( $form['meta_key'] ?? '' ) );
	return array(
		'gateway_url'    => $url,
		'secret'         => '' !== $secret ? $secret : $current['secret'],
		'store'          => sanitize_text_field( (string) ( $form['store'] ?? '' ) ),
		'meta_key'       => '' !== $key ? $key : '_cartbands_checkout',
		'consent_fields' => ! empty( $form['consent_fields'] ),
		'restore_days'   => min( 90, max( 1, absint( $form['restore_days'] ?? 14 ) ) ),
	);
}

/** Saves the form (admin-post.php): capability and nonce checked first. */
function cartbands_carts_save_settings(): void {
	if ( ! current_user_can( 'manage_woocommerce' ) ) {
		wp_die( esc_html__( 'You may not change these settings.', 'cartbands-carts' ), '', array( 'response' => 403 ) );
	}
	check_admin_referer( 'cartbands_carts_save' );
	$form = array();
	foreach ( array( 'gateway_url', 'secret', 'store', 'meta_key', 'consent_fields', 'restore_days' ) as $name ) {
		if ( isset( $_POST[ $name ] ) ) {
			$form[ $name ] = wp_unslash( $_POST[ $name ] ); // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- cleaned field by field below.
		}
	}
	update_option( CARTBANDS_CARTS_OPTION, cartbands_carts_clean_settings( $form ), false );
	wp_safe_redirect( admin_url( 'admin.php?page=cartbands-carts&updated=1' ) );
	exit;
}

/** The settings form; the secret is never written into the page. */
function cartbands_carts_settings_page(): void {
	if ( ! current_user_can( 'manage_woocommerce' ) ) {
		return;
	}
	$settings = cartbands_carts_settings();
	$rows     = array(
		array( 'gateway_url', 'Gateway URL', 'url', $settings['gateway_url'], 'https://carts.example.com/webhooks/woocommerce' ),
		array( 'store', 'Store id in the cartbands policy', 'text', $settings['store'], 'acme' ),
		array( 'secret', 'Secret (the policy\'s woocommerce.secret_env)', 'password', '', '' !== $settings['secret'] ? 'saved; leave empty to keep it' : '' ),
		array( 'meta_key', 'Order meta key (the policy\'s checkout_meta_key)', 'text', $settings['meta_key'], '_cartbands_checkout' ),
		array( 'restore_days', 'Recovery links valid for (days)', 'number', (string) $settings['restore_days'], '14' ),
	);
	echo '<div class="wrap"><h1>' . esc_html__( 'Cartbands carts', 'cartbands-carts' ) . '</h1>';
	echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '">';
	echo '<input type="hidden" name="action" value="cartbands_carts_save">';
	wp_nonce_field( 'cartbands_carts_save' );
	echo '<table class="form-table">';
	foreach ( $rows as [ $name, $label, $type, $value, $placeholder ] ) {
		printf(
			'<tr><th scope="row"><label for="cartbands-%1$s">%2$s</label></th><td><input class="regular-text" id="cartbands-%1$s" name="%1$s" type="%3$s" value="%4$s" placeholder="%5$s" autocomplete="off"></td></tr>',
			esc_attr( $name ),
			esc_html( $label ),
			esc_attr( $type ),
			esc_attr( $value ),
			esc_attr( $placeholder )
		);
	}
	printf(
		'<tr><th scope="row">%1$s</th><td><label><input name="consent_fields" type="checkbox" value="1"%2$s> %3$s</label></td></tr>',
		esc_html__( 'Consent at checkout', 'cartbands-carts' ),
		$settings['consent_fields'] ? ' checked' : '',
		esc_html__( 'Add "email me" and "text me" opt-in boxes to the checkout form', 'cartbands-carts' )
	);
	echo '</table>';
	submit_button();
	echo '</form></div>';
}
