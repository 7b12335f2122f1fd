<?php
/**
 * Signing and delivery. A snapshot is posted as WooCommerce delivers a webhook (per
 * class-wc-webhook.php deliver() and generate_signature()): JSON body, the X-WC-Webhook-*
 * headers, and X-WC-Webhook-Signature = base64( HMAC-SHA256( raw body, secret ) ). Its topic
 * is an action topic, `action.cartbands_cart`, which the gateway reads as canonical records.
 *
 * With Action Scheduler (bundled with WooCommerce) the post happens in a background action and
 * a network error, 429 or 5xx is tried again later with the same body (so the same event id,
 * which the gateway's core de-duplicates), up to CARTBANDS_CARTS_ATTEMPTS times. Without it,
 * the post is a non-blocking wp_safe_remote_post() at the end of the request, tried once.
 *
 * @package CartbandsCarts
 */

defined( 'ABSPATH' ) || exit;

const CARTBANDS_CARTS_DELIVER_HOOK = 'cartbands_carts_deliver';
const CARTBANDS_CARTS_TOPIC        = 'action.cartbands_cart';
const CARTBANDS_CARTS_ATTEMPTS     = 5;

/** base64( HMAC-SHA256( `$body`, `$secret` ) ), as WooCommerce signs a webhook body. */
function cartbands_carts_signature( string $body, string $secret ): string {
	return base64_encode( hash_hmac( 'sha256', $body, $secret, true ) ); // phpcs:ignore WordPress.PHP.DiscouragedPHPFunctions.obfuscation_base64_encode
}

/**
 * The wp_remote_post() arguments delivering `$body`.
 *
 * @param string $body     The JSON body.
 * @param int    $attempt  1 for the first delivery.
 * @param bool   $blocking Whether to wait for the answer.
 */
function cartbands_carts_request( string $body, int $attempt, bool $blocking ): array {
	$settings = cartbands_carts_settings();
	[ $resource, $event ] = explode( '.', CARTBANDS_CARTS_TOPIC, 2 );
	return array(
		'method'      => 'POST',
		'timeout'     => $blocking ? 15 : 3,
		'redirection' => 0,
		'blocking'    => $blocking,
		'user-agent'  => sprintf( 'CartbandsCarts/%s (WordPress/%s)', CARTBANDS_CARTS_VERSION, get_bloginfo( 'version' ) ),
		'body'        => $body,
		'headers'     => array(
			'Content-Type'             => 'application/json',
			'X-WC-Webhook-Source'      => home_url( '/' ),
			'X-WC-Webhook-Topic'       => CARTBANDS_CARTS_TOPIC,
			'X-WC-Webhook-Resource'    => $resource,
			'X-WC-Webhook-Event'       => $event,
			'X-WC-Webhook-Signature'   => cartbands_carts_signature( $body, $settings['secret'] ),
			'X-WC-Webhook-ID'          => '0',
			'X-WC-Webhook-Delivery-ID' => wp_hash( hash( 'sha256', $body ) . '|' . $attempt . '|' . time() ),
		),
		'cookies'     => array(),
	);
}

/** Sends `$body` (in the background when Action Scheduler is there). */
function cartbands_carts_send( string $body ): void {
	if ( function_exists( 'as_enqueue_async_action' ) ) {
		as_enqueue_async_action( CARTBANDS_CARTS_DELIVER_HOOK, array( $body, 1 ), 'cartbands-carts' );
		return;
	}
	wp_safe_remote_post( cartbands_carts_settings()['gateway_url'], cartbands_carts_request( $body, 1, false ) );
}

/**
 * The Action Scheduler action: posts `$body` and schedules a later attempt when the gateway
 * could not take it. Logs the status only: never the body (personal data) nor a header.
 *
 * @param string $body    The JSON body.
 * @param int    $attempt Which attempt this is.
 */
function cartbands_carts_deliver_action( string $body, int $attempt = 1 ): void {
	$response = wp_safe_remote_post( cartbands_carts_settings()['gateway_url'], cartbands_carts_request( $body, $attempt, true ) );
	$status   = is_wp_error( $response ) ? 0 : (int) wp_remote_retrieve_response_code( $response );
	if ( $status >= 200 && $status < 300 ) {
		return;
	}
	$transient = 0 === $status || 429 === $status || $status >= 500;
	if ( $transient && $attempt < CARTBANDS_CARTS_ATTEMPTS && function_exists( 'as_schedule_single_action' ) ) {
		as_schedule_single_action( time() + 60 * ( 2 ** ( $attempt - 1 ) ), CARTBANDS_CARTS_DELIVER_HOOK, array( $body, $attempt + 1 ), 'cartbands-carts' );
		return;
	}
	if ( function_exists( 'wc_get_logger' ) ) {
		wc_get_logger()->warning(
			sprintf( 'cart snapshot not delivered: HTTP status %d after %d attempt(s)', $status, $attempt ),
			array( 'source' => 'cartbands-carts' )
		);
	}
}
