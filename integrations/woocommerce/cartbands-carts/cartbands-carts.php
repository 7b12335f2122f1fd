<?php
/**
 * Plugin Name: Cartbands Carts
 * Description: Sends WooCommerce cart snapshots to a cartbands gateway, signed as WooCommerce signs webhooks, and restores a cart from its recovery link.
 * Version: 1.0.0
 * Requires PHP: 8.2
 * Requires Plugins: woocommerce
 * License: Apache-2.0
 *
 * @package CartbandsCarts
 */

defined( 'ABSPATH' ) || exit;

const CARTBANDS_CARTS_VERSION = '1.0.0';
const CARTBANDS_CARTS_FILE    = __FILE__;

require_once __DIR__ . '/includes/settings.php';
require_once __DIR__ . '/includes/payload.php';
require_once __DIR__ . '/includes/sender.php';
require_once __DIR__ . '/includes/restore.php';
require_once __DIR__ . '/includes/capture.php';
require_once __DIR__ . '/includes/tracker.php';

// Cart changes: each marks the cart changed; one snapshot is sent at the end of the request.
// Not woocommerce_cart_updated: WooCommerce fires it whenever it loads a cart from the session.
foreach ( array(
	'woocommerce_add_to_cart',
	'woocommerce_cart_item_removed',
	'woocommerce_cart_item_restored',
	'woocommerce_after_cart_item_quantity_update',
	'woocommerce_cart_emptied',
	'woocommerce_applied_coupon',
	'woocommerce_removed_coupon',
) as $cartbands_carts_hook ) {
	add_action( $cartbands_carts_hook, 'cartbands_carts_touch' );
}

// What the shopper typed at checkout (classic form, its order review refresh, block checkout).
add_action( 'wp_ajax_cartbands_carts_capture', 'cartbands_carts_ajax_capture' );
add_action( 'wp_ajax_nopriv_cartbands_carts_capture', 'cartbands_carts_ajax_capture' );
add_action( 'woocommerce_checkout_update_order_review', 'cartbands_carts_order_review' );
add_action( 'woocommerce_store_api_cart_update_customer_from_request', 'cartbands_carts_store_api_customer' );
add_action( 'woocommerce_store_api_checkout_update_customer_from_request', 'cartbands_carts_store_api_customer' );
add_filter( 'woocommerce_checkout_fields', 'cartbands_carts_consent_fields' );
add_action( 'wp_enqueue_scripts', 'cartbands_carts_enqueue' );

// The cart -> order link the gateway reads from the order webhook's meta_data (the block
// checkout writes a draft order's meta early: only a placed order ends the cart's checkout).
add_action( 'woocommerce_checkout_create_order', 'cartbands_carts_link_order' );
add_action( 'woocommerce_store_api_checkout_update_order_meta', 'cartbands_carts_link_order' );
add_action( 'woocommerce_checkout_order_processed', 'cartbands_carts_order_placed' );
add_action( 'woocommerce_store_api_checkout_order_processed', 'cartbands_carts_order_placed' );

// Delivery in the background when Action Scheduler is there (WooCommerce bundles it).
add_action( CARTBANDS_CARTS_DELIVER_HOOK, 'cartbands_carts_deliver_action', 10, 2 );

// The recovery link: after WooCommerce has loaded the session and cart (wp_loaded, 10).
add_action( 'wp_loaded', 'cartbands_carts_restore_request', 30 );

add_action( 'admin_menu', 'cartbands_carts_admin_menu' );
add_action( 'admin_post_cartbands_carts_save', 'cartbands_carts_save_settings' );
