<?php
/**
 * The cart payload: one canonical `cart_updated` record, as the gateway's generic format
 * (gateway/generic.py, schemas/CartUpdated.schema.json) takes it. Money is a decimal string
 * with exactly the currency's ISO 4217 minor units (JPY "3600", USD "19.99", KWD "1.250").
 *
 * @package CartbandsCarts
 */

defined( 'ABSPATH' ) || exit;

// ISO 4217 codes whose minor units are not 2 (the gateway's recovery/amounts.py refuses more).
const CARTBANDS_CARTS_MINOR_UNITS = array(
	'BIF' => 0, 'CLP' => 0, 'DJF' => 0, 'GNF' => 0, 'ISK' => 0, 'JPY' => 0, 'KMF' => 0, 'KRW' => 0,
	'PYG' => 0, 'RWF' => 0, 'UGX' => 0, 'UYI' => 0, 'VND' => 0, 'VUV' => 0, 'XAF' => 0, 'XOF' => 0,
	'XPF' => 0, 'BHD' => 3, 'IQD' => 3, 'JOD' => 3, 'KWD' => 3, 'LYD' => 3, 'OMR' => 3, 'TND' => 3,
	'CLF' => 4, 'UYW' => 4,
);

/** The number of decimals of `$currency`'s amounts. */
function cartbands_carts_minor_units( string $currency ): int {
	return CARTBANDS_CARTS_MINOR_UNITS[ $currency ] ?? 2;
}

/**
 * `$value` (WooCommerce keeps amounts as floats or numeric strings) as a decimal string with
 * exactly `$decimals` places, never negative.
 *
 * @param mixed $value    An amount.
 * @param int   $decimals The currency's minor units.
 */
function cartbands_carts_money( mixed $value, int $decimals ): string {
	$amount = is_numeric( $value ) ? round( (float) $value, $decimals ) : 0.0;
	return number_format( max( 0.0, $amount ), $decimals, '.', '' );
}

/** Plain text of a product name (tags removed, entities decoded). */
function cartbands_carts_text( string $text ): string {
	return trim( html_entity_decode( wp_strip_all_tags( $text ), ENT_QUOTES | ENT_HTML5, 'UTF-8' ) );
}

/**
 * The line items of `$cart`: unit prices as the shop displays them (with tax when it shows
 * prices with tax), before cart-wide coupons.
 *
 * @param WC_Cart $cart     The cart.
 * @param int     $decimals The currency's minor units.
 * @return list<array<string, mixed>>
 */
function cartbands_carts_line_items( $cart, int $decimals ): array {
	$with_tax = $cart->display_prices_including_tax();
	$items    = array();
	foreach ( $cart->get_cart() as $item ) {
		$product  = $item['data'] ?? null;
		$quantity = (int) ( $item['quantity'] ?? 0 );
		if ( ! is_object( $product ) || $quantity <= 0 ) {
			continue;
		}
		$line = (float) ( $item['line_subtotal'] ?? 0 ) + ( $with_tax ? (float) ( $item['line_subtotal_tax'] ?? 0 ) : 0.0 );
		$row  = array(
			'title'      => cartbands_carts_text( (string) $product->get_name() ),
			'quantity'   => $quantity,
			'price'      => cartbands_carts_money( $line / $quantity, $decimals ),
			'product_id' => (string) (int) ( $item['product_id'] ?? 0 ),
		);
		$variation = (int) ( $item['variation_id'] ?? 0 );
		if ( $variation > 0 ) {
			$row['variant_id'] = (string) $variation;
		}
		$sku = (string) $product->get_sku();
		if ( '' !== $sku ) {
			$row['sku'] = $sku;
		}
		$items[] = $row;
	}
	return $items;
}

/**
 * How to reach the shopper and what they agreed to: what they typed at checkout (kept in the
 * session) over what their account says. Stores that keep consent elsewhere (a newsletter
 * plugin, a user meta) set it with the `cartbands_carts_contact` filter.
 *
 * @param WC_Customer|null $customer The session's customer.
 * @param array            $typed    The session's captured contact (email, phone, consents).
 * @return array<string, mixed>
 */
function cartbands_carts_contact( $customer, array $typed ): array {
	$user_id = get_current_user_id();
	$contact = array(
		'email'         => $typed['email'] ?? '',
		'phone'         => $typed['phone'] ?? '',
		'customer_id'   => $user_id > 0 ? (string) $user_id : '',
		'first_name'    => '',
		'email_consent' => ! empty( $typed['email_consent'] ),
		'sms_consent'   => ! empty( $typed['sms_consent'] ),
		'locale'        => str_replace( '_', '-', (string) get_locale() ),
	);
	if ( is_object( $customer ) ) {
		if ( '' === $contact['email'] ) {
			$contact['email'] = (string) ( $customer->get_billing_email() ?: $customer->get_email() );
		}
		if ( '' === $contact['phone'] ) {
			$contact['phone'] = (string) $customer->get_billing_phone();
		}
		$contact['first_name'] = (string) ( $customer->get_billing_first_name() ?: $customer->get_first_name() );
	}
	$contact = (array) apply_filters( 'cartbands_carts_contact', $contact, $customer );
	return array_filter(
		$contact,
		static fn ( $value ) => is_bool( $value ) || ( is_string( $value ) && '' !== $value )
	);
}

/**
 * Country, state and postcode of one of the customer's addresses (for the shopper's time
 * zone: SMS quiet hours); `null` when none is known.
 *
 * @param WC_Customer|null $customer The session's customer.
 * @param string           $kind     `billing` or `shipping`.
 */
function cartbands_carts_address( $customer, string $kind ): ?array {
	if ( ! is_object( $customer ) ) {
		return null;
	}
	$address = array_filter(
		array(
			'country_code'  => (string) $customer->{"get_{$kind}_country"}(),
			'province_code' => (string) $customer->{"get_{$kind}_state"}(),
			'zip'           => (string) $customer->{"get_{$kind}_postcode"}(),
		),
		'strlen'
	);
	return $address ? $address : null;
}

/**
 * The snapshot of `$cart` without its delivery fields (event id, time): equal content gives
 * an equal array, so an unchanged cart is not sent again.
 *
 * @param WC_Cart          $cart         The cart.
 * @param WC_Customer|null $customer     The session's customer.
 * @param array            $typed        The session's captured contact.
 * @param string           $checkout     The cart's checkout id.
 * @param string           $recovery_url The link that restores the cart.
 * @return array<string, mixed>
 */
function cartbands_carts_snapshot( $cart, $customer, array $typed, string $checkout, string $recovery_url ): array {
	$currency = strtoupper( (string) get_woocommerce_currency() );
	$decimals = cartbands_carts_minor_units( $currency );
	$with_tax = $cart->display_prices_including_tax();
	$items    = cartbands_carts_line_items( $cart, $decimals );
	$subtotal = (float) $cart->get_subtotal() + ( $with_tax ? (float) $cart->get_subtotal_tax() : 0.0 );
	$shipping = (float) $cart->get_shipping_total() + ( $with_tax ? (float) $cart->get_shipping_tax() : 0.0 );
	$payload  = array(
		'type'         => 'cart_updated',
		'store'        => cartbands_carts_settings()['store'],
		'checkout'     => $checkout,
		'platform'     => 'woocommerce',
		'currency'     => $currency,
		'total'        => cartbands_carts_money( $items ? $cart->get_total( 'edit' ) : 0, $decimals ),
		'subtotal'     => cartbands_carts_money( $items ? $subtotal : 0, $decimals ),
		'shipping'     => cartbands_carts_money( $items ? $shipping : 0, $decimals ),
		'line_items'   => $items,
		'recovery_url' => $recovery_url,
	);
	$contact = cartbands_carts_contact( $customer, $typed );
	if ( array_intersect_key( $contact, array_flip( array( 'email', 'phone', 'customer_id' ) ) ) ) {
		$payload['contact'] = $contact;
	}
	$user_id = get_current_user_id();
	if ( $user_id > 0 ) {
		$payload['customer'] = array(
			'orders_count' => (int) wc_get_customer_order_count( $user_id ),
			'total_spent'  => cartbands_carts_money( wc_get_customer_total_spent( $user_id ), $decimals ),
		);
	}
	foreach ( array( 'billing', 'shipping' ) as $kind ) {
		$address = cartbands_carts_address( $customer, $kind );
		if ( null !== $address ) {
			$payload[ "{$kind}_address" ] = $address;
		}
	}
	if ( ! $items ) {
		unset( $payload['recovery_url'] ); // an emptied cart has nothing to restore
	}
	return $payload;
}

/**
 * The record as sent: the snapshot with its event id and time, JSON as WooCommerce encodes
 * webhook bodies (`trim( wp_json_encode( $payload ) )`, per class-wc-webhook.php deliver()).
 *
 * @param array  $snapshot    What {@see cartbands_carts_snapshot()} built.
 * @param string $event_id    Unique per snapshot; a retry of the same body keeps it.
 * @param string $occurred_at UTC, ISO-8601 with microseconds (the core orders updates by it).
 */
function cartbands_carts_body( array $snapshot, string $event_id, string $occurred_at ): string {
	$record = array_merge(
		array_slice( $snapshot, 0, 3, true ),
		array(
			'event_id'    => $event_id,
			'occurred_at' => $occurred_at,
		),
		array_slice( $snapshot, 3, null, true )
	);
	return trim( (string) wp_json_encode( $record, JSON_INVALID_UTF8_SUBSTITUTE ) );
}
