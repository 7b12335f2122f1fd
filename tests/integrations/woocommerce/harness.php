<?php
/**
 * Drives the cartbands-carts plugin through shoppers' carts on stubbed WordPress and writes
 * what it did as JSON: every HTTP request it made (headers and the raw body, base64), the
 * Action Scheduler actions it queued, order meta, restore answers, settings page facts.
 * tests/integrations/woocommerce/test_plugin.py feeds the requests to the gateway.
 *
 * Usage: php harness.php OUT.json SECRET [--action-scheduler]
 */

[ , $out, $secret ] = $argv;
$with_scheduler     = in_array( '--action-scheduler', $argv, true );

require __DIR__ . '/wordpress_stubs.php';

if ( $with_scheduler ) {
	/** Action Scheduler's queueing functions, keeping what was queued. */
	function as_enqueue_async_action( string $hook, array $args = array(), string $group = '' ): int {
		Harness::$scheduled[] = array( 'hook' => $hook, 'args' => $args, 'group' => $group, 'at' => null, 'scenario' => Harness::$scenario );
		return count( Harness::$scheduled );
	}

	function as_schedule_single_action( int $at, string $hook, array $args = array(), string $group = '' ): int {
		Harness::$scheduled[] = array( 'hook' => $hook, 'args' => $args, 'group' => $group, 'at' => $at - time(), 'scenario' => Harness::$scenario );
		return count( Harness::$scheduled );
	}
}

require dirname( __DIR__, 3 ) . '/integrations/woocommerce/cartbands-carts/cartbands-carts.php';

update_option(
	CARTBANDS_CARTS_OPTION,
	array(
		'gateway_url'    => 'https://carts.example.com/webhooks/woocommerce',
		'secret'         => $secret,
		'store'          => 'acme',
		'meta_key'       => '_cartbands_checkout',
		'consent_fields' => true,
		'restore_days'   => 14,
	)
);

$catalogue = array(
	101  => new FakeProduct( 'Espresso beans', 'BEAN-1', 18.5 ),
	1021 => new FakeProduct( 'Mug - Blue', 'MUG-B', 12.0 ),
	201  => new FakeProduct( 'Tea', '', 10.0 ),
	301  => new FakeProduct( 'Café crème – 250 g', 'CAFE-250', 9.95 ),
	302  => new FakeProduct( '日本茶 <b>Sencha</b> &amp; more', 'SEN-1', 14.0 ),
	401  => new FakeProduct( 'Matcha', 'MAT-1', 1200 ),
);

$facts = array();

/** A new shopper's session with a cart of this shape; the scenario's name tags its requests. */
function shopper( string $scenario, string $currency, array $catalogue, array $cart = array(), array $customer = array(), int $user = 0 ): FakeCart {
	Harness::$scenario = $scenario;
	Harness::$currency = $currency;
	Harness::$user_id  = $user;
	$fake              = new FakeCart( $catalogue, ...$cart );
	Harness::new_session( new FakeCustomer( $customer ), $fake );
	return $fake;
}

/** An admin-ajax request of the capture script. */
function ajax_capture( array $fields ): string {
	$_POST    = $fields;
	$_REQUEST = $fields;
	try {
		do_action( 'wp_ajax_nopriv_cartbands_carts_capture' );
		$answer = 'no answer';
	} catch ( RequestEnded $ended ) {
		$answer = $ended->getMessage();
	}
	$_POST    = array();
	$_REQUEST = array();
	Harness::end_request();
	return $answer;
}

// A guest adds two lines (one a variation), then types an email and ticks "email me".
$cart = shopper( 'guest_email', 'USD', $catalogue, array( 0.0, 5.0 ) );
$cart->add_to_cart( 101, 2 );
$cart->add_to_cart( 102, 1, 1021, array( 'attribute_pa_color' => 'blue' ) );
Harness::end_request();
$facts['guest_capture'] = ajax_capture( array( 'nonce' => 'nonce-cartbands_carts_capture', 'billing_email' => ' bo@example.com ', 'cartbands_email_consent' => '1', 'cartbands_sms_consent' => '0' ) );
$facts['guest_same_again'] = ajax_capture( array( 'nonce' => 'nonce-cartbands_carts_capture', 'billing_email' => 'bo@example.com', 'cartbands_email_consent' => '1', 'cartbands_sms_consent' => '0' ) );
$facts['guest_bad_nonce'] = ajax_capture( array( 'nonce' => 'forged', 'billing_email' => 'eve@example.com' ) );
$facts['guest_requests']  = count( Harness::$posts );
$guest_session            = WC()->session;

// A logged-in customer: account contact, addresses, order history; prices shown with 20% tax.
$cart = shopper(
	'logged_in',
	'EUR',
	$catalogue,
	array( 0.2, 4.9, true ),
	array(
		'billing_email'      => 'ana@example.com',
		'billing_phone'      => '+33 6 12 34 56 78',
		'billing_first_name' => 'Ana',
		'billing_country'    => 'FR',
		'billing_postcode'   => '75011',
		'shipping_country'   => 'DE',
		'shipping_state'     => 'BE',
		'shipping_postcode'  => '10115',
	),
	42
);
Harness::$history = array( 3, 412.5 );
$cart->add_to_cart( 201, 3 );
Harness::end_request();
Harness::$history = array( 0, 0.0 );

// A guest who only gives a phone number and ticks "text me" (classic checkout refresh).
$cart = shopper( 'phone_only', 'GBP', $catalogue, array( 0.0, 3.5 ) );
$cart->add_to_cart( 101, 1 );
do_action( 'woocommerce_checkout_update_order_review', 'billing_first_name=Cy&billing_email=&billing_phone=%2B44+7700+900123&cartbands_sms_consent=1' );
Harness::end_request();

// The block checkout: the Store API saved the typed email and phone into the customer, and
// wrote a draft order's meta; then the shopper empties the cart: that is still sent.
$cart = shopper( 'block_checkout', 'USD', $catalogue, array( 0.0, 5.0 ) );
$cart->add_to_cart( 101, 1 );
Harness::end_request();
$typed = new FakeCustomer( array( 'billing_email' => 'gil@example.com', 'billing_phone' => '(555) 010-0199' ) );
do_action( 'woocommerce_store_api_checkout_update_customer_from_request', $typed, null );
$draft = new FakeOrder();
do_action( 'woocommerce_store_api_checkout_update_order_meta', $draft );
Harness::end_request();
$facts['draft_meta'] = $draft->meta;
$cart->empty_cart();
Harness::end_request();

// A store that records consent elsewhere (here a newsletter flag) sets it with the filter.
function newsletter_consent( array $contact, $customer ): array {
	$contact['email_consent'] = 'yes' === $customer->get_newsletter();
	return $contact;
}
add_filter( 'cartbands_carts_contact', 'newsletter_consent', 10, 2 );
$cart = shopper( 'filtered_consent', 'USD', $catalogue, array( 0.0, 5.0 ), array( 'billing_email' => 'hal@example.com', 'newsletter' => 'yes' ) );
$cart->add_to_cart( 101, 1 );
Harness::end_request();
unset( Harness::$hooks['cartbands_carts_contact'] );

// A cart emptied by the shopper: the empty snapshot is sent (zero total, no items).
$cart = shopper( 'emptied', 'USD', $catalogue, array( 0.0, 5.0 ) );
$cart->add_to_cart( 101, 1 );
ajax_capture( array( 'nonce' => 'nonce-cartbands_carts_capture', 'billing_email' => 'di@example.com', 'cartbands_email_consent' => '1' ) );
$cart->empty_cart();
Harness::end_request();

// Product names with accents, CJK, markup and an entity.
$cart = shopper( 'non_ascii', 'EUR', $catalogue, array( 0.0, 0.0 ), array( 'billing_email' => 'élodie@example.com', 'billing_first_name' => 'Élodie' ) );
$cart->add_to_cart( 301, 2 );
$cart->add_to_cart( 302, 1 );
Harness::end_request();

// Yen: no decimals.
$cart = shopper( 'jpy', 'JPY', $catalogue, array( 0.0, 0.0, false, 0 ), array( 'billing_email' => 'ken@example.com' ) );
$cart->add_to_cart( 401, 3 );
Harness::end_request();

// An order is placed: its meta names the checkout, and the emptied cart after it sends nothing.
$cart = shopper( 'ordered', 'USD', $catalogue, array( 0.0, 5.0 ), array( 'billing_email' => 'ed@example.com' ) );
$cart->add_to_cart( 101, 1 );
Harness::end_request();
$order = new FakeOrder();
do_action( 'woocommerce_checkout_create_order', $order, array() );
do_action( 'woocommerce_checkout_order_processed', 881, array(), $order );
$cart->empty_cart();
Harness::end_request();
$facts['order_meta']        = $order->meta;
$facts['ordered_checkout']  = WC()->session->get( 'cartbands_checkout' );
$facts['ordered_requests']  = count( array_filter( Harness::$posts, fn ( $p ) => 'ordered' === $p['scenario'] ) );
$cart->add_to_cart( 201, 1 );
Harness::end_request();
$facts['next_cart_checkout'] = WC()->session->get( 'cartbands_checkout' );

// The guest's recovery link opened in another browser, then a forged and a malformed one.
$link = null;
foreach ( array_merge( Harness::$posts, Harness::$scheduled ) as $sent ) {
	if ( 'guest_email' === $sent['scenario'] ) {
		$link = json_decode( $sent['args']['body'] ?? $sent['args'][0], true )['recovery_url'];
	}
}
parse_str( (string) parse_url( $link, PHP_URL_QUERY ), $query );
$cart                  = shopper( 'restored', 'USD', $catalogue, array( 0.0, 5.0 ) );
$facts['restore']      = cartbands_carts_restore( $query['cartbands_restore'], $query['cartbands_token'] );
$facts['restore_cookie'] = WC()->session->has_session();
Harness::end_request();
$cart                  = shopper( 'forged_link', 'USD', $catalogue );
$facts['forged']       = cartbands_carts_restore( $query['cartbands_restore'], str_repeat( '0', 32 ) );
$facts['malformed']    = cartbands_carts_restore( '../etc', $query['cartbands_token'] );
Harness::end_request();
$facts['forged_cart_empty'] = $cart->is_empty();
$facts['restore_ttl']       = Harness::$transients[ 'cartbands_carts_' . $query['cartbands_restore'] ][1];

// Settings: the page never shows the secret; a blank secret keeps it; a forged form is refused.
Harness::$user_id = 1;
ob_start();
cartbands_carts_settings_page();
$page                      = ob_get_clean();
$facts['page_has_secret']  = str_contains( $page, $secret );
$facts['page_has_nonce']   = str_contains( $page, 'name="_wpnonce"' );
$facts['page_escapes']     = ! str_contains( $page, '<script>' );
$_POST                     = array( 'gateway_url' => 'javascript:alert(1)', 'secret' => '', 'store' => '<script>x</script>acme', 'restore_days' => '500', '_wpnonce' => 'forged' );
$_REQUEST                  = $_POST;
try {
	cartbands_carts_save_settings();
	$facts['forged_form'] = 'saved';
} catch ( RequestEnded $ended ) {
	$facts['forged_form'] = $ended->getMessage();
}
$facts['after_forged'] = cartbands_carts_settings()['gateway_url'];
$cleaned               = cartbands_carts_clean_settings( $_POST );
$facts['cleaned']      = array(
	'gateway_url'  => $cleaned['gateway_url'],
	'secret_kept'  => $cleaned['secret'] === $secret,
	'store'        => $cleaned['store'],
	'restore_days' => $cleaned['restore_days'],
);
$_POST                 = array();
$_REQUEST              = array();
Harness::$user_id      = 0;

// With Action Scheduler: queued, posted in the action, retried with the same body on a 503.
if ( $with_scheduler ) {
	$cart = shopper( 'scheduled', 'USD', $catalogue, array( 0.0, 5.0 ), array( 'billing_email' => 'fay@example.com' ) );
	$cart->add_to_cart( 101, 1 );
	Harness::end_request();
	$facts['posts_in_request'] = count( Harness::$posts );
	Harness::$answers          = array( 503, 0, 200, 400 );
	$queued                    = count( Harness::$scheduled );
	$first                     = Harness::$scheduled[ $queued - 1 ];
	// Action Scheduler runs each queued action: 503, then a network error, then 200.
	for ( $run = $queued - 1; $run < $queued + 2; $run++ ) {
		do_action( Harness::$scheduled[ $run ]['hook'], ...Harness::$scheduled[ $run ]['args'] );
	}
	$facts['queued_after_success'] = count( Harness::$scheduled ) - $queued;
	cartbands_carts_deliver_action( $first['args'][0], 1 );
	$facts['queued_after_refusal'] = count( Harness::$scheduled ) - $queued;
}

$facts['minor_units'] = CARTBANDS_CARTS_MINOR_UNITS;
$facts['hooks']       = array_keys( Harness::$hooks );

$requests = array();
foreach ( Harness::$posts as $post ) {
	$requests[] = array(
		'scenario' => $post['scenario'],
		'url'      => $post['url'],
		'blocking' => $post['args']['blocking'],
		'method'   => $post['args']['method'],
		'headers'  => $post['args']['headers'],
		'body'     => base64_encode( $post['args']['body'] ),
	);
}
$scheduled = array_map(
	fn ( $s ) => array(
		'scenario' => $s['scenario'],
		'hook'     => $s['hook'],
		'body'     => base64_encode( $s['args'][0] ),
		'attempt'  => $s['args'][1],
		'delay'    => $s['at'],
	),
	Harness::$scheduled
);
file_put_contents(
	$out,
	json_encode(
		array(
			'requests'  => $requests,
			'scheduled' => $scheduled,
			'logs'      => Harness::$logs,
			'notices'   => Harness::$notices,
			'facts'     => $facts,
		),
		JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR
	)
);
