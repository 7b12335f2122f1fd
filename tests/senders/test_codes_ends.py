"""Which issued codes a shopper-events record ends (pure), and building the provisioners."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from config.policyfile import DEFAULT_POLICY, load_policy, parse_policy
from recovery.ids import shopper_key
from senders.adapters.base import ConfigError
from senders.codes.ends import ended
from senders.codes.ledger import CodeLedger, Issued
from senders.codes.registry import CodeRoutes
from senders.codes.shopify import ShopifyProvisioner

DUE = datetime(2026, 11, 2, 16, 0, tzinfo=UTC).timestamp()
ANN = shopper_key("demo", "c1")
assert ANN is not None


class _Log:
    entries: dict = {}

    def get(self, key):
        return None


def ledger(*issued: Issued) -> CodeLedger:
    book = CodeLedger(_Log())  # type: ignore[arg-type]
    book.live = {i.code: i for i in issued}
    return book


def issued(code: str, cart: str, shopper: str = ANN, due: float = DUE, store: str = "demo"):
    return Issued(code, store, shopper, cart, "shopify", f"gid://{code}", f"t_{code}", due,
                  due + 48 * 3600)  # fmt: skip


def converted(checkout: str, shopper: str, at: str, used=()):
    return {"type": "cart_converted", "store": "demo", "shopper": shopper, "checkout": checkout,
            "occurred_at": at, "discount_codes": list(used)}  # fmt: skip


def codes(pairs):
    return sorted(i.code for i, _ in pairs)


def test_an_order_ends_the_shoppers_codes_issued_before_it_but_not_the_used_one():
    book = ledger(
        issued("A1", "chk-1"),
        issued("B2", "chk-2"),  # another cart of the same shopper: an order stops everything
        issued("C3", "chk-3", shopper="demo:other"),
        issued("D4", "chk-1", due=DUE + 86400),  # a later plan of the cart, after the order
        issued("E5", "chk-1", store="elsewhere"),
    )
    order = converted("chk-1", ANN, "2026-11-02T20:00:00Z", used=["a1"])
    assert codes(ended(order, book)) == ["B2"]
    assert codes(ended(converted("chk-3", "demo:x", "2026-11-02T20:00:00Z"), book)) == ["C3"]
    assert ended(converted("chk-1", ANN, "not a time"), book) == []
    assert ended({"type": "consent_changed", "store": "demo"}, book) == []
    assert ended("garbage", book) == []


def test_redactions_end_codes_issued_before_them():
    book = ledger(issued("A1", "chk-1"), issued("B2", "chk-2", due=DUE + 86400),
                  issued("C3", "chk-3", shopper="demo:other"))  # fmt: skip
    redacted = {"type": "shopper_redacted", "store": "demo", "customer_id": "c1",
                "occurred_at": "2026-11-02T20:00:00Z"}  # fmt: skip
    assert codes(ended(redacted, book)) == ["A1"]  # B2 came with a cart used after it
    store = {"type": "store_redacted", "store": "demo", "occurred_at": "2026-11-04T20:00:00Z"}
    assert codes(ended(store, book)) == ["A1", "B2", "C3"]


def test_code_routes_per_store_and_outbox_only():
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["stores"] = {
        "shop": {"delivery": {"codes": {"platform": "shopify", "shop": "a.myshopify.com",
                                        "access_token_env": "TOKEN_A"}}},
    }  # fmt: skip
    policies = parse_policy(data, "test")
    routes = CodeRoutes(policies, {"TOKEN_A": "x"})
    assert isinstance(routes.for_store("shop"), ShopifyProvisioner)
    assert routes.for_store("printed") is None  # the defaults: codes only printed
    with pytest.raises(ConfigError, match=r"stores\.shop\.delivery\.codes.*TOKEN_A"):
        CodeRoutes(policies, {})
    assert CodeRoutes(policies, {}, disabled=True).for_store("shop") is None
    assert CodeRoutes(load_policy(None), {}).provisioners == []


def test_the_ledger_rebuilds_from_the_log_and_forgets_expired_codes():
    from dataclasses import asdict

    from senders.dedup import Entry

    log = _Log()
    live, old, gone = (
        issued("A1", "chk-1"),
        issued("B2", "chk-2", due=DUE - 4 * 86400),
        issued("C3", "chk-3"),
    )
    log.entries = {
        "code:A1": Entry("code:A1", "code_issued", None, "", asdict(live)),
        "code:B2": Entry("code:B2", "code_issued", None, "", asdict(old)),
        "code:C3": Entry("code:C3", "code_removed", "order", ""),
        "t_touch": Entry("t_touch", "reported", "delivered", ""),
        "code:BAD": Entry("code:BAD", "code_issued", None, "", {"code": "BAD"}),
    }
    book = CodeLedger(log)  # type: ignore[arg-type]
    now = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
    assert book.load(now) == 1 and set(book.live) == {"A1"}  # B2 expired, C3 removed
    assert gone.code not in book.live
    book.prune(datetime(2026, 11, 5, 12, 0, tzinfo=UTC))
    assert book.live == {}
