<?php
/**
 * The recovery link: `<home>/?cartbands_restore=<checkout>&cartbands_token=<token>` puts the
 * cart back in whichever browser opens it and continues the same checkout (so the order that
 * follows converts the plan that sent the link). The cart's items are kept in a transient for
 * the days the settings say; the token is random per checkout, compared in constant time.
 *
 * @package CartbandsCarts
 */

defined( 'ABSPATH' ) || exit;

const CARTBANDS_CARTS_CHECKOUT_PATTERN = '/^wc-[0-9a-f]{32}$/';
const CARTBANDS_CARTS_TOKEN_PATTERN    = '/^[0-9a-f]{32}$/';

/** The link that restores checkout `$checkout`. */
function cartbands_carts_recovery_url( string $checkout, string $token ): string {
	$home = home_url( '/' );
	$glue = str_contains( $home, '?' ) ? '&' : '?';
	return $home . $glue . http_build_query(
		array(
			'cartbands_restore' => $checkout,
			'cartbands_token'   => $token,
		)
	);
}

/** The transient that keeps a checkout's items. */
function cartbands_carts_restore_key( string $checkout ): string {
	return 'cartbands_carts_' . $checkout;
}

/**
 * Keeps what restoring `$checkout` needs: its items (product, variation, quantity, attributes)
 * and how to reach the shopper, so a restored cart keeps being reachable.
 *
 * @param string  $checkout The checkout id.
 * @param string  $token    The link's token.
 * @param int     $seq      The last snapshot's number.
 * @param WC_Cart $cart     The cart.
 * @param array   $contact  The snapshot's contact.
 */
function cartbands_carts_keep_for_restore( string $checkout, string $token, int $seq, $cart, array $contact ): void {
	$items = array();
	foreach ( $cart->get_cart() as $item ) {
		$items[] = array(
			'product_id'   => (int) ( $item['product_id'] ?? 0 ),
			'variation_id' => (int) ( $item['variation_id'] ?? 0 ),
			'quantity'     => (int) ( $item['quantity'] ?? 0 ),
			'variation'    => is_array( $item['variation'] ?? null ) ? $item['variation'] : array(),
		);
	}
	$keep = array_intersect_key( $contact, array_flip( array( 'email', 'phone', 'email_consent', 'sms_consent' ) ) );
	set_transient(
		cartbands_carts_restore_key( $checkout ),
		array(
			'token'   => $token,
			'seq'     => $seq,
			'items'   => $items,
			'contact' => $keep,
		),
		cartbands_carts_settings()['restore_days'] * DAY_IN_SECONDS
	);
}

/**
 * Restores checkout `$checkout` into this session's cart; the URL to send the shopper to
 * (the checkout, or the cart page with a notice when the link is unknown or expired).
 *
 * @param string $checkout From the link.
 * @param string $token    From the link.
 */
function cartbands_carts_restore( string $checkout, string $token ): string {
	$kept = null;
	if ( preg_match( CARTBANDS_CARTS_CHECKOUT_PATTERN, $checkout ) && preg_match( CARTBANDS_CARTS_TOKEN_PATTERN, $token ) ) {
		$kept = get_transient( cartbands_carts_restore_key( $checkout ) );
	}
	if ( ! is_array( $kept ) || ! hash_equals( (string) ( $kept['token'] ?? '' ), $token ) ) {
		wc_add_notice( __( 'This cart link has expired. Your cart is as you left it here.', 'cartbands-carts' ), 'notice' );
		return wc_get_cart_url();
	}
	$wc = WC();
	$wc->cart->empty_cart();
	foreach ( (array) $kept['items'] as $item ) {
		$wc->cart->add_to_cart( (int) $item['product_id'], (int) $item['quantity'], (int) $item['variation_id'], (array) $item['variation'] );
	}
	$session = $wc->session;
	if ( method_exists( $session, 'has_session' ) && ! $session->has_session() ) {
		$session->set_customer_session_cookie( true );
	}
	$typed = array_filter( (array) ( $session->get( 'cartbands_contact' ) ?? array() ) );
	$session->set( 'cartbands_checkout', $checkout );
	$session->set( 'cartbands_token', $kept['token'] );
	$session->set( 'cartbands_seq', (int) $kept['seq'] );
	$session->set( 'cartbands_sent', null );
	$session->set( 'cartbands_ordered', null );
	$session->set( 'cartbands_contact', array_merge( (array) $kept['contact'], $typed ) );
	cartbands_carts_touch();
	if ( $wc->cart->is_empty() ) {
		wc_add_notice( __( 'The items of this cart are no longer available.', 'cartbands-carts' ), 'notice' );
		return wc_get_cart_url();
	}
	return wc_get_checkout_url();
}

/** Answers a recovery link (wp_loaded): restore, then redirect. */
function cartbands_carts_restore_request(): void {
	if ( ! isset( $_GET['cartbands_restore'] ) || ! function_exists( 'WC' ) || ! isset( WC()->cart ) ) { // phpcs:ignore WordPress.Security.NonceVerification.Recommended -- the link's token is checked.
		return;
	}
	$checkout = sanitize_text_field( wp_unslash( $_GET['cartbands_restore'] ) ); // phpcs:ignore WordPress.Security.NonceVerification.Recommended
	$token    = sanitize_text_field( wp_unslash( $_GET['cartbands_token'] ?? '' ) ); // phpcs:ignore WordPress.Security.NonceVerification.Recommended
	wp_safe_redirect( cartbands_carts_restore( $checkout, $token ) );
	exit;
}
