"""Each code provisioner against a local fake of its platform: the requests as documented,
idempotency by code, "already exists", retries of 429/5xx and a 4xx refused at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fake_platforms import FakeBigCommerce, FakeShopify, FakeWooCommerce

from recovery.code_spec import code_spec
from recovery.codes_policy import BigCommerceCodes, ShopifyCodes, WooCommerceCodes
from recovery.delivery_policy import RetryPolicy
from senders.adapters.base import ConfigError
from senders.codes.base import NotOurs
from senders.codes.bigcommerce import BigCommerceProvisioner
from senders.codes.retry import GaveUp, retried
from senders.codes.shopify import ShopifyProvisioner
from senders.codes.woocommerce import WooCommerceProvisioner
from senders.outcomes import Outcome

START = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
FAST = RetryPolicy(max_attempts=5, base_delay=timedelta(milliseconds=1),
                   max_delay=timedelta(milliseconds=5))  # fmt: skip
ENV = {"SHOP_TOKEN": "shpat_test", "WC_KEY": "ck_test", "WC_SECRET": "cs_test",
       "BC_TOKEN": "bc_test"}  # fmt: skip


def spec(code="ACE4HJ7KMN9P", touch="t_mid2", **overrides):
    args = {
        "code": code, "kind": "percent_off", "value": Decimal(10), "service": None,
        "expires_at": START + timedelta(hours=48), "starts_at": START, "currency": "USD",
        "touch_id": touch, "store": "demo", "shopper": "demo:abc", "cart": "m1",
        "band_min": Decimal(50), "customer_id": "7001", "email": "fay@example.com",
    }  # fmt: skip
    args.update(overrides)
    return code_spec(**args)


async def ensure(provisioner, made):
    return await retried(lambda: provisioner.ensure(made), FAST, "test")


@pytest.fixture
async def shop():
    fake = await FakeShopify().start()
    config = ShopifyCodes(platform="shopify", shop="demo.myshopify.com", base_url=fake.url,
                          access_token_env="SHOP_TOKEN")  # fmt: skip
    provisioner = ShopifyProvisioner(config, ENV)
    yield fake, provisioner
    await provisioner.close()
    await fake.stop()


@pytest.fixture
async def woo():
    fake = await FakeWooCommerce().start()
    config = WooCommerceCodes(
        platform="woocommerce", base_url=fake.url, consumer_key_env="WC_KEY",
        consumer_secret_env="WC_SECRET",
    )  # fmt: skip
    provisioner = WooCommerceProvisioner(config, ENV)
    yield fake, provisioner
    await provisioner.close()
    await fake.stop()


@pytest.fixture
async def bc():
    fake = await FakeBigCommerce().start()
    config = BigCommerceCodes(platform="bigcommerce", store_hash="abc123", base_url=fake.url,
                              access_token_env="BC_TOKEN")  # fmt: skip
    provisioner = BigCommerceProvisioner(config, ENV)
    yield fake, provisioner
    await provisioner.close()
    await fake.stop()


async def test_shopify_creates_once_and_finds_it_again(shop):
    fake, provisioner = shop
    made, attempts = await ensure(provisioner, spec())
    assert made.created and attempts == 1 and made.ref.startswith("gid://shopify/")
    held = fake.discounts["ACE4HJ7KMN9P"]["input"]
    assert held["usageLimit"] == 1 and held["appliesOncePerCustomer"] is True
    assert held["endsAt"] == "2026-11-05T15:00:00Z"
    again, _ = await ensure(provisioner, spec())
    assert not again.created and again.ref == made.ref
    assert fake.count("POST", "discountCodeBasicCreate") == 1  # never two
    vip = spec("FREE4HJ7KMNP", "t_vip", kind="service", service="free_expedited_shipping",
               value=None)  # fmt: skip
    free, _ = await ensure(provisioner, vip)
    assert free.created and fake.discounts["FREE4HJ7KMNP"]["type"] == "DiscountCodeFreeShipping"


async def test_shopify_taken_by_a_racing_sender_is_ours(shop):
    fake, provisioner = shop
    await ensure(provisioner, spec())
    fake.hide_once = True  # our look-up misses what another sender just made
    made, _ = await ensure(provisioner, spec())
    assert not made.created and fake.count("POST", "discountCodeBasicCreate") == 2
    assert len(fake.discounts) == 1


async def test_shopify_refuses_a_code_that_is_not_ours(shop):
    _fake, provisioner = shop
    await ensure(provisioner, spec(touch="t_other"))
    with pytest.raises(GaveUp) as caught:
        await ensure(provisioner, spec())
    assert caught.value.outcome is Outcome.DEAD_LETTERED and "not 'cartbands t_mid2'" in str(
        caught.value
    )
    with pytest.raises(NotOurs):
        await provisioner.ensure(spec())


async def test_shopify_retries_throttling_429_and_5xx(shop):
    fake, provisioner = shop
    fake.fail = [(429, {"errors": "Exceeded"}), (503, {}), "throttled"]
    made, attempts = await ensure(provisioner, spec())
    assert made.created and attempts == 4 and len(fake.discounts) == 1


async def test_shopify_4xx_is_refused_at_once(shop):
    fake, provisioner = shop
    fake.fail = [(403, {"errors": "needs write_discounts"})]
    with pytest.raises(GaveUp) as caught:
        await ensure(provisioner, spec())
    assert caught.value.outcome is Outcome.DEAD_LETTERED and caught.value.attempts == 1
    assert "403" in caught.value.reason and not fake.discounts
    fake.fail = [(500, {})] * 5
    with pytest.raises(GaveUp) as caught:
        await ensure(provisioner, spec())
    assert caught.value.outcome is Outcome.FAILED and caught.value.attempts == 5


async def test_shopify_wrong_token_or_version_is_permanent(shop):
    fake, _ = shop
    wrong = ShopifyProvisioner(
        ShopifyCodes(platform="shopify", shop="d", base_url=fake.url, access_token_env="T"),
        {"T": "nope"},
    )
    old = ShopifyProvisioner(
        ShopifyCodes(platform="shopify", shop="d", base_url=fake.url, api_version="2024-01",
                     access_token_env="T"), {"T": "shpat_test"},
    )  # fmt: skip
    for provisioner, status in ((wrong, "401"), (old, "404")):
        with pytest.raises(GaveUp, match=status):
            await ensure(provisioner, spec())
        await provisioner.close()
    with pytest.raises(ConfigError, match="SHOP_TOKEN"):
        ShopifyProvisioner(
            ShopifyCodes(platform="shopify", shop="d", access_token_env="SHOP_TOKEN"), {}
        )


async def test_shopify_remove(shop):
    fake, provisioner = shop
    made, _ = await ensure(provisioner, spec())
    assert await provisioner.remove(made.code, made.ref) is True
    assert not fake.discounts
    assert await provisioner.remove(made.code, made.ref) is False  # gone already


async def test_woocommerce_create_find_exists_and_remove(woo):
    fake, provisioner = woo
    made, _ = await ensure(provisioner, spec())
    coupon = fake.coupons[int(made.ref)]
    assert coupon["usage_limit"] == 1 and coupon["usage_limit_per_user"] == 1
    assert coupon["email_restrictions"] == ["fay@example.com"]
    assert coupon["date_expires_gmt"] == "2026-11-05T15:00:00"
    again, _ = await ensure(provisioner, spec())
    assert not again.created and again.ref == made.ref
    fake.hide_once = True  # the create answers "already exists": checked to be ours
    raced, _ = await ensure(provisioner, spec())
    assert not raced.created and len(fake.coupons) == 1
    assert fake.count("POST") == 2
    with pytest.raises(GaveUp, match="exists in the store"):
        await ensure(provisioner, spec(touch="t_other"))
    assert await provisioner.remove(made.code, made.ref) is True and not fake.coupons
    assert await provisioner.remove(made.code, made.ref) is False


async def test_woocommerce_retries_and_refusals(woo):
    fake, provisioner = woo
    fake.fail = [(502, {}), (429, {})]
    made, attempts = await ensure(provisioner, spec())
    assert made.created and attempts == 3
    wrong = WooCommerceProvisioner(
        WooCommerceCodes(platform="woocommerce", base_url=fake.url, consumer_key_env="WC_KEY",
                         consumer_secret_env="T"), {"WC_KEY": "ck_test", "T": "bad"},
    )  # fmt: skip
    with pytest.raises(GaveUp) as caught:
        await ensure(wrong, spec("OTHERCODE777"))
    await wrong.close()
    assert caught.value.outcome is Outcome.DEAD_LETTERED and caught.value.attempts == 1


async def test_bigcommerce_promotion_with_its_code(bc):
    fake, provisioner = bc
    made, _ = await ensure(provisioner, spec())
    promotion = fake.promotions[int(made.ref)]
    assert promotion["max_uses"] == 1 and promotion["end_date"] == "2026-11-05T15:00:00+00:00"
    assert promotion["codes"][0]["code"] == "ACE4HJ7KMN9P"
    assert promotion["codes"][0]["max_uses_per_customer"] == 1
    again, _ = await ensure(provisioner, spec())
    assert not again.created and len(fake.promotions) == 1
    assert fake.count("POST", "/codes") == 1
    assert await provisioner.remove(made.code, made.ref) is True and not fake.promotions


async def test_bigcommerce_finishes_a_promotion_left_without_its_code(bc):
    fake, provisioner = bc
    # an earlier attempt created the promotion and crashed before adding the code
    first = spec()
    fake.promotions[77] = {"id": 77, "name": first.title, "codes": [], "rules": [{}]}
    made, _ = await ensure(provisioner, first)
    assert made.ref == "77" and not made.created
    assert [c["code"] for c in fake.promotions[77]["codes"]] == ["ACE4HJ7KMN9P"]
    created = [r for r in fake.requests if r["method"] == "POST" and r["path"].endswith("tions")]
    assert created == [] and len(fake.promotions) == 1


async def test_bigcommerce_retries_and_refusals(bc):
    fake, provisioner = bc
    fake.fail = [(429, {}), (500, {})]
    made, attempts = await ensure(provisioner, spec())
    assert made.created and attempts == 3
    fake.fail = [(422, {"title": "bad rule"})]
    with pytest.raises(GaveUp) as caught:
        await ensure(provisioner, spec("SECOND4HJ7KM", "t_2"))
    assert caught.value.outcome is Outcome.DEAD_LETTERED and caught.value.attempts == 1
