<?php
/**
 * The few WordPress and WooCommerce functions the cartbands-carts plugin calls, as plain
 * in-memory stand-ins: hooks run as WordPress runs them (one callback per name and priority,
 * `accepted_args` honoured), options and transients live in arrays, HTTP posts are captured.
 * A fake cart computes its totals as WooCommerce does for a flat tax rate and flat shipping,
 * and fires the cart hooks WooCommerce fires.
 */

const ABSPATH        = __DIR__ . '/';
const DAY_IN_SECONDS = 86400;
const SITE_HOME      = 'https://shop.acme.example/';

/** wp_die(), wp_send_json_*() and exit stand-ins: the request ends here. */
final class RequestEnded extends RuntimeException {
}

final class Harness {
	public static array $hooks      = array();
	public static array $done       = array();
	public static array $options    = array();
	public static array $transients = array();
	public static array $posts      = array();
	public static array $answers    = array(); // HTTP status to answer, in order (default 200)
	public static array $scheduled  = array();
	public static array $notices    = array();
	public static array $logs       = array();
	public static int $user_id      = 0;
	public static string $currency  = 'USD';
	public static array $history    = array( 0, 0.0 );
	public static ?object $wc       = null;
	public static string $scenario  = '';

	/** A new browser session (new WC() objects, no hooks done yet). */
	public static function new_session( FakeCustomer $customer, FakeCart $cart ): void {
		self::$wc   = (object) array(
			'cart'     => $cart,
			'session'  => new FakeSession(),
			'customer' => $customer,
		);
		self::$done = array();
	}

	/** The end of a request: WordPress runs `shutdown`, then forgets what ran. */
	public static function end_request(): void {
		do_action( 'shutdown' );
		unset( self::$hooks['shutdown'] );
		self::$done = array();
	}
}

function add_action( string $hook, $callback, int $priority = 10, int $accepted_args = 1 ): bool {
	Harness::$hooks[ $hook ][ $priority ][ (string) $callback ] = $accepted_args;
	ksort( Harness::$hooks[ $hook ] );
	return true;
}

function add_filter( string $hook, $callback, int $priority = 10, int $accepted_args = 1 ): bool {
	return add_action( $hook, $callback, $priority, $accepted_args );
}

function do_action( string $hook, ...$args ): void {
	Harness::$done[ $hook ] = ( Harness::$done[ $hook ] ?? 0 ) + 1;
	foreach ( Harness::$hooks[ $hook ] ?? array() as $callbacks ) {
		foreach ( $callbacks as $callback => $accepted ) {
			$callback( ...array_slice( $args, 0, $accepted ) );
		}
	}
}

function apply_filters( string $hook, $value, ...$args ) {
	foreach ( Harness::$hooks[ $hook ] ?? array() as $callbacks ) {
		foreach ( $callbacks as $callback => $accepted ) {
			$value = $callback( ...array_slice( array( $value, ...$args ), 0, $accepted ) );
		}
	}
	return $value;
}

function did_action( string $hook ): int {
	return Harness::$done[ $hook ] ?? 0;
}

function get_option( string $name, $default = false ) {
	return Harness::$options[ $name ] ?? $default;
}

function update_option( string $name, $value, $autoload = null ): bool {
	Harness::$options[ $name ] = $value;
	return true;
}

function set_transient( string $name, $value, int $expiration = 0 ): bool {
	Harness::$transients[ $name ] = array( $value, $expiration );
	return true;
}

function get_transient( string $name ) {
	return Harness::$transients[ $name ][0] ?? false;
}

function home_url( string $path = '' ): string {
	return rtrim( SITE_HOME, '/' ) . $path;
}

function admin_url( string $path = '' ): string {
	return SITE_HOME . 'wp-admin/' . $path;
}

function plugins_url( string $path, string $file ): string {
	return SITE_HOME . 'wp-content/plugins/cartbands-carts/' . $path;
}

function get_bloginfo( string $what ): string {
	return '6.7';
}

function get_locale(): string {
	return 'fr_FR';
}

function __( string $text, string $domain = '' ): string {
	return $text;
}

function esc_html( $text ): string {
	return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
}

function esc_attr( $text ): string {
	return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
}

function esc_html__( string $text, string $domain = '' ): string {
	return esc_html( $text );
}

function esc_url( string $url ): string {
	return esc_attr( $url );
}

function esc_url_raw( string $url, ?array $protocols = null ): string {
	$scheme = (string) parse_url( $url, PHP_URL_SCHEME );
	return in_array( $scheme, $protocols ?? array( 'http', 'https' ), true ) ? $url : '';
}

function sanitize_key( string $key ): string {
	return preg_replace( '/[^a-z0-9_\-]/', '', strtolower( $key ) );
}

function sanitize_text_field( string $text ): string {
	return trim( preg_replace( '/[\r\n\t ]+/', ' ', strip_tags( $text ) ) );
}

function sanitize_email( string $email ): string {
	return preg_replace( '/[^a-zA-Z0-9.!#$%&\'*+\/=?^_`{|}~@-]/', '', trim( $email ) );
}

function is_email( string $email ) {
	return filter_var( $email, FILTER_VALIDATE_EMAIL ) ? $email : false;
}

function absint( $value ): int {
	return abs( (int) $value );
}

function wp_unslash( $value ) {
	return is_string( $value ) ? stripslashes( $value ) : $value;
}

function wp_strip_all_tags( string $text ): string {
	return trim( strip_tags( $text ) );
}

function wp_json_encode( $data, int $options = 0 ) {
	return json_encode( $data, $options );
}

function wp_hash( string $data ): string {
	return hash_hmac( 'md5', $data, 'harness-salt' );
}

function wp_create_nonce( string $action ): string {
	return 'nonce-' . $action;
}

function wp_nonce_field( string $action ): void {
	echo '<input type="hidden" name="_wpnonce" value="' . esc_attr( wp_create_nonce( $action ) ) . '">';
}

function check_admin_referer( string $action ): int {
	if ( ( $_REQUEST['_wpnonce'] ?? '' ) !== wp_create_nonce( $action ) ) {
		throw new RequestEnded( 'bad nonce' );
	}
	return 1;
}

function check_ajax_referer( string $action, string $field ): int {
	if ( ( $_REQUEST[ $field ] ?? '' ) !== wp_create_nonce( $action ) ) {
		throw new RequestEnded( 'bad nonce' );
	}
	return 1;
}

function current_user_can( string $capability ): bool {
	return Harness::$user_id === 1;
}

function wp_die( $message = '', $title = '', $args = array() ): void {
	throw new RequestEnded( 'wp_die' );
}

function wp_send_json_success(): void {
	throw new RequestEnded( 'json' );
}

function wp_safe_redirect( string $url ): bool {
	Harness::$notices[] = array( 'redirect', $url );
	return true;
}

function submit_button(): void {
	echo '<input type="submit" value="Save Changes">';
}

function add_submenu_page( ...$args ): string {
	return 'cartbands-carts';
}

function wp_safe_remote_post( string $url, array $args ) {
	Harness::$posts[] = array(
		'scenario' => Harness::$scenario,
		'url'      => $url,
		'args'     => $args,
	);
	$status = array_shift( Harness::$answers ) ?? 200;
	return 0 === $status ? new WP_Error( 'http_request_failed', 'refused' ) : array( 'response' => array( 'code' => $status ) );
}

final class WP_Error {
	public function __construct( public string $code = '', public string $message = '' ) {
	}
}

function is_wp_error( $thing ): bool {
	return $thing instanceof WP_Error;
}

function wp_remote_retrieve_response_code( $response ) {
	return $response['response']['code'] ?? '';
}

final class FakeLogger {
	public function warning( string $message, array $context = array() ): void {
		Harness::$logs[] = array( 'warning', $message, $context );
	}
}

function wc_get_logger(): FakeLogger {
	return new FakeLogger();
}

function wc_add_notice( string $message, string $type = 'success' ): void {
	Harness::$notices[] = array( $type, $message );
}

function wc_get_cart_url(): string {
	return SITE_HOME . 'cart/';
}

function wc_get_checkout_url(): string {
	return SITE_HOME . 'checkout/';
}

function is_checkout(): bool {
	return true;
}

function get_current_user_id(): int {
	return Harness::$user_id;
}

function get_woocommerce_currency(): string {
	return Harness::$currency;
}

function wc_get_customer_order_count( int $user_id ): int {
	return Harness::$history[0];
}

function wc_get_customer_total_spent( int $user_id ): string {
	return (string) Harness::$history[1];
}

function WC(): object {
	return Harness::$wc;
}

final class FakeSession {
	private array $data = array();
	public bool $cookie = false;

	public function get( string $key, $default = null ) {
		return $this->data[ $key ] ?? $default;
	}

	public function set( string $key, $value ): void {
		$this->data[ $key ] = $value;
	}

	public function has_session(): bool {
		return $this->cookie;
	}

	public function set_customer_session_cookie( bool $set ): void {
		$this->cookie = $set;
	}
}

final class FakeCustomer {
	public function __construct( private array $props = array() ) {
	}

	public function __call( string $name, array $args ): string {
		return (string) ( $this->props[ substr( $name, 4 ) ] ?? '' );
	}
}

final class FakeProduct {
	public function __construct( public string $name, public string $sku, public float $price ) {
	}

	public function get_name(): string {
		return $this->name;
	}

	public function get_sku(): string {
		return $this->sku;
	}
}

final class FakeOrder {
	public array $meta = array();

	public function update_meta_data( string $key, $value ): void {
		$this->meta[ $key ] = $value;
	}
}

/** A cart with a flat tax rate and a flat shipping charge, totals as WooCommerce sums them. */
final class FakeCart {
	private array $items  = array();
	private array $totals = array();

	/**
	 * @param array<int, FakeProduct> $catalogue Products by (variation or product) id.
	 */
	public function __construct(
		private array $catalogue,
		private float $tax_rate = 0.0,
		private float $shipping = 0.0,
		private bool $with_tax = false,
		private int $decimals = 2
	) {
	}

	public function add_to_cart( int $product_id, int $quantity = 1, int $variation_id = 0, array $variation = array() ): string {
		$key                 = md5( $product_id . ':' . $variation_id . ':' . json_encode( $variation ) );
		$this->items[ $key ] = array(
			'key'          => $key,
			'product_id'   => $product_id,
			'variation_id' => $variation_id,
			'variation'    => $variation,
			'quantity'     => ( $this->items[ $key ]['quantity'] ?? 0 ) + $quantity,
			'data'         => $this->catalogue[ $variation_id ?: $product_id ],
		);
		do_action( 'woocommerce_add_to_cart', $key, $product_id, $quantity, $variation_id, $variation, array() );
		return $key;
	}

	public function remove_cart_item( string $key ): void {
		unset( $this->items[ $key ] );
		do_action( 'woocommerce_cart_item_removed', $key, $this );
	}

	public function empty_cart( bool $clear_session = true ): void {
		$this->items  = array();
		$this->totals = array();
		do_action( 'woocommerce_cart_emptied', $clear_session );
	}

	public function is_empty(): bool {
		return ! $this->items;
	}

	public function calculate_totals(): void {
		$round = fn ( float $x ) => round( $x, $this->decimals );
		foreach ( $this->items as &$item ) {
			$item['line_subtotal']     = $round( $item['data']->price * $item['quantity'] );
			$item['line_subtotal_tax'] = $round( $item['line_subtotal'] * $this->tax_rate );
		}
		unset( $item );
		$subtotal     = array_sum( array_column( $this->items, 'line_subtotal' ) );
		$subtotal_tax = array_sum( array_column( $this->items, 'line_subtotal_tax' ) );
		$shipping     = $this->items ? $this->shipping : 0.0;
		$shipping_tax = $round( $shipping * $this->tax_rate );
		$this->totals = array(
			'subtotal'     => $subtotal,
			'subtotal_tax' => $subtotal_tax,
			'shipping'     => $shipping,
			'shipping_tax' => $shipping_tax,
			'total'        => $subtotal + $subtotal_tax + $shipping + $shipping_tax,
		);
		do_action( 'woocommerce_after_calculate_totals', $this );
		do_action( 'woocommerce_cart_updated' );
	}

	public function get_cart(): array {
		return $this->items;
	}

	public function display_prices_including_tax(): bool {
		return $this->with_tax;
	}

	public function get_subtotal() {
		return $this->totals['subtotal'] ?? 0;
	}

	public function get_subtotal_tax() {
		return $this->totals['subtotal_tax'] ?? 0;
	}

	public function get_shipping_total() {
		return $this->totals['shipping'] ?? 0;
	}

	public function get_shipping_tax() {
		return $this->totals['shipping_tax'] ?? 0;
	}

	public function get_total( string $context = 'view' ) {
		return $this->totals['total'] ?? 0;
	}
}
