<?php
/**
 * The cart's life in the WooCommerce session: its checkout id (stable while the cart lives,
 * carried into the order's meta), the last snapshot sent, and one send per request.
 *
 * Session keys: cartbands_checkout, cartbands_token (the recovery link's), cartbands_seq,
 * cartbands_sent (fingerprint of the last snapshot sent), cartbands_contact (what the shopper
 * typed at checkout), cartbands_ordered (the checkout an order was created for).
 *
 * @package CartbandsCarts
 */

defined( 'ABSPATH' ) || exit;

/** Marks the cart changed; the snapshot is built once, at the end of the request. */
function cartbands_carts_touch(): void {
	// Added once however often the cart changes (a hook holds a callback once per priority);
	// before WooCommerce saves its session (shutdown, priority 20), so what is set here is kept.
	add_action( 'shutdown', 'cartbands_carts_flush', 5 );
}

/** A random id of `$bytes` bytes, in hex. */
function cartbands_carts_random( int $bytes ): string {
	return bin2hex( random_bytes( $bytes ) );
}

/** Forget the cart's checkout: the next item added starts a new one. */
function cartbands_carts_forget( $session ): void {
	foreach ( array( 'cartbands_checkout', 'cartbands_token', 'cartbands_seq', 'cartbands_sent', 'cartbands_ordered' ) as $key ) {
		$session->set( $key, null );
	}
}

/** The current time as the record's `occurred_at`: UTC with microseconds. */
function cartbands_carts_now(): string {
	return ( new DateTimeImmutable( 'now', new DateTimeZone( 'UTC' ) ) )->format( 'Y-m-d\TH:i:s.u\Z' );
}

/**
 * Builds the cart's snapshot and sends it when it differs from the last one sent. A cart with
 * no checkout yet starts one when it has items; an empty cart whose order was placed ends its
 * checkout without a word (the order webhook tells the gateway); an emptied cart otherwise is
 * sent (zero total, no items: the gateway's core ends its plan).
 */
function cartbands_carts_flush(): void {
	if ( ! cartbands_carts_configured() || ! function_exists( 'WC' ) ) {
		return;
	}
	$wc = WC();
	if ( ! is_object( $wc ) || ! isset( $wc->cart, $wc->session ) || ! is_object( $wc->cart ) || ! is_object( $wc->session ) ) {
		return;
	}
	$cart     = $wc->cart;
	$session  = $wc->session;
	$empty    = $cart->is_empty();
	$checkout = (string) $session->get( 'cartbands_checkout' );
	if ( '' === $checkout ) {
		if ( $empty ) {
			return;
		}
		$checkout = 'wc-' . cartbands_carts_random( 16 );
		$session->set( 'cartbands_checkout', $checkout );
		$session->set( 'cartbands_token', cartbands_carts_random( 16 ) );
		$session->set( 'cartbands_seq', 0 );
	} elseif ( $empty && $session->get( 'cartbands_ordered' ) === $checkout ) {
		cartbands_carts_forget( $session );
		return;
	}
	if ( ! $empty ) {
		$cart->calculate_totals(); // the change that brought us here may postdate the totals
	}
	$typed    = (array) ( $session->get( 'cartbands_contact' ) ?? array() );
	$token    = (string) $session->get( 'cartbands_token' );
	$snapshot = cartbands_carts_snapshot( $cart, $wc->customer ?? null, $typed, $checkout, cartbands_carts_recovery_url( $checkout, $token ) );
	$print    = hash( 'sha256', (string) wp_json_encode( $snapshot ) );
	if ( $session->get( 'cartbands_sent' ) === $print ) {
		return;
	}
	$seq = (int) $session->get( 'cartbands_seq' ) + 1;
	$session->set( 'cartbands_seq', $seq );
	$session->set( 'cartbands_sent', $print );
	if ( ! $empty ) {
		cartbands_carts_keep_for_restore( $checkout, $token, $seq, $cart, (array) ( $snapshot['contact'] ?? array() ) );
	}
	$body = cartbands_carts_body( $snapshot, $checkout . ':' . $seq . '-' . substr( $print, 0, 8 ), cartbands_carts_now() );
	cartbands_carts_send( $body );
}

/** The session's checkout id, '' when there is none. */
function cartbands_carts_session_checkout(): string {
	$session = function_exists( 'WC' ) ? ( WC()->session ?? null ) : null;
	return is_object( $session ) ? (string) $session->get( 'cartbands_checkout' ) : '';
}

/**
 * Writes the cart's checkout id into the order being created (WC_Order, before it is saved),
 * under the meta key the gateway's policy names (`checkout_meta_key`). The REST API's order
 * (the order webhook's payload) lists every meta entry in `meta_data`, underscored keys too,
 * so the order webhook converts this checkout.
 *
 * @param WC_Order $order The order.
 */
function cartbands_carts_link_order( $order ): void {
	$checkout = cartbands_carts_session_checkout();
	if ( '' !== $checkout && is_object( $order ) ) {
		$order->update_meta_data( cartbands_carts_settings()['meta_key'], $checkout );
	}
}

/** An order was placed for the cart: once WooCommerce empties it, its checkout ends. */
function cartbands_carts_order_placed(): void {
	$checkout = cartbands_carts_session_checkout();
	if ( '' !== $checkout ) {
		WC()->session->set( 'cartbands_ordered', $checkout );
	}
}
