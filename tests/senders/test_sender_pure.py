"""Pure parts of the senders: outcomes, retry schedule, token bucket, lateness, hashing."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sender_helpers import touch_data

from recovery.delivery_policy import RetryPolicy
from schemas.records import TouchCommand
from senders.audience import audience_payload, audience_row, normalize_email, normalize_phone
from senders.decide import after_previous, kept_result, precheck
from senders.outcomes import (
    Outcome,
    PermanentError,
    TransientError,
    backoff_delay,
    classify_status,
    http_error,
    is_expired,
    next_step,
    parse_retry_after,
    without_contacts,
)
from senders.ratelimit import Bucket, take

NOW = datetime(2026, 11, 2, 16, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=4, base_delay="1s", max_delay="10s")


@pytest.mark.parametrize(
    ("status", "ok", "transient"),
    [(200, True, False), (202, True, False), (400, False, False), (401, False, False),
     (404, False, False), (408, False, True), (429, False, True), (500, False, True),
     (503, False, True)],
)  # fmt: skip
def test_classify_status(status, ok, transient):
    kind = classify_status(status)
    assert (kind.ok, kind.transient) == (ok, transient)


def test_http_error_kinds():
    assert isinstance(http_error(429, "slow down", 3), TransientError)
    assert http_error(429, "slow down", 3).retry_after == 3  # type: ignore[attr-defined]
    assert isinstance(http_error(400, "bad"), PermanentError)


def test_retry_after_seconds_and_date():
    assert parse_retry_after("7", NOW) == 7
    assert parse_retry_after("Mon, 02 Nov 2026 16:00:30 GMT", NOW) == 30
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_backoff_grows_and_caps():
    ceilings = [backoff_delay(n, POLICY, 0.999999) for n in range(1, 7)]
    assert ceilings == pytest.approx([1, 2, 4, 8, 10, 10], rel=1e-3)
    assert backoff_delay(3, POLICY, 0.0) == 0.0


@given(st.integers(min_value=1, max_value=40), st.floats(min_value=0, max_value=1))
def test_backoff_within_bounds(attempt, draw):
    delay = backoff_delay(attempt, POLICY, draw)
    assert 0 <= delay <= POLICY.max_delay.total_seconds()


def test_next_step_rules():
    transient = TransientError("HTTP 503")
    assert next_step(1, transient, POLICY, 0.5).retry
    assert next_step(1, transient, POLICY, 0.5).delay == pytest.approx(0.5)
    gave_up = next_step(4, transient, POLICY, 0.5)
    assert not gave_up.retry and "after 4 attempts" in gave_up.reason
    assert not next_step(1, PermanentError("HTTP 400"), POLICY, 0.5).retry
    honoured = next_step(1, TransientError("429", retry_after=3), POLICY, 0.5)
    assert honoured.retry and honoured.delay == 3
    too_long = next_step(1, TransientError("429", retry_after=3600), POLICY, 0.5)
    assert not too_long.retry and "3600" in too_long.reason


def test_lateness():
    due = NOW - timedelta(hours=6)
    assert not is_expired(due, NOW, timedelta(hours=6))
    assert is_expired(due - timedelta(seconds=1), NOW, timedelta(hours=6))
    assert not is_expired(NOW + timedelta(hours=1), NOW, timedelta(hours=6))


def test_bucket_burst_then_rate():
    bucket = Bucket.full(rate=2.0, burst=3, now=0.0)
    waits = []
    for _ in range(5):
        bucket, wait = take(bucket, 0.0)
        waits.append(wait)
    assert waits == [0, 0, 0, 0.5, 1.0]
    bucket, wait = take(bucket, 10.0)  # refilled to the burst, not beyond
    assert wait == 0 and bucket.tokens == 2.0


@given(st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=30))
def test_bucket_never_exceeds_rate(gaps):
    bucket = Bucket.full(rate=4.0, burst=2, now=0.0)
    now = 0.0
    served = []
    for gap in gaps:
        now += gap
        bucket, wait = take(bucket, now)
        served.append(now + wait)
    span = served[-1] - 0.0
    assert len(served) <= 2 + 4.0 * span + 1e-6


def test_meta_normalization_and_hash():
    assert normalize_email("  Fay@Example.COM ") == "fay@example.com"
    assert normalize_phone("+1 (212) 555-0100") == "12125550100"
    assert normalize_phone("212 555 0100") is None
    assert normalize_phone("212 555 0100", "US") == "12125550100"
    row = audience_row(" Fay@Example.com", "+1 212-555-0100")
    assert row is not None
    assert row.email_sha256 == hashlib.sha256(b"fay@example.com").hexdigest()
    assert row.phone_sha256 == hashlib.sha256(b"12125550100").hexdigest()
    payload = audience_payload(row)
    assert payload == {"schema": ["EMAIL", "PHONE"], "data": [[row.email_sha256, row.phone_sha256]]}
    assert "fay" not in str(payload)
    only_email = audience_row("a@b.co", None)
    assert only_email is not None and only_email.phone_sha256 == ""
    assert audience_row(None, "garbage") is None


async def test_limiter_waits_for_tokens():
    from senders.ratelimit import Limiter

    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = Limiter(rate=10.0, burst=2, clock=lambda: now[0], sleep=sleep)
    waits = [await limiter.acquire() for _ in range(4)]
    assert waits == [0, 0, pytest.approx(0.1), pytest.approx(0.1)]
    assert sum(slept) == pytest.approx(0.2)


def test_error_reasons_carry_no_contacts():
    twilio = http_error(400, "Twilio 21211: The 'To' number +1 212-555-0100 is not a valid phone")
    assert twilio.reason == "HTTP 400: Twilio 21211: The 'To' number <phone> is not a valid phone"
    smtp = PermanentError("550 5.1.1 <Fay.Lee+cart@mail.example.co.uk>: mailbox unavailable")
    assert smtp.reason == "550 5.1.1 <<email>>: mailbox unavailable"
    kept = "HTTP 429: Twilio 20429: Too Many Requests; retry after 2026-11-02 16:00"
    assert without_contacts(kept) == kept  # codes and dates are not contacts


def test_lateness_spares_audience_removals():
    late = NOW + timedelta(days=3)
    stale = TouchCommand.from_data(touch_data(channel="ads", template="retarget"))
    verdict = precheck(stale, "ads", late, timedelta(hours=6))
    assert verdict is not None and verdict.outcome.value == "expired"
    removal = TouchCommand.from_data(touch_data(channel="ads", template="audience_remove"))
    assert precheck(removal, "ads", late, timedelta(hours=6)) is None


def test_a_repeated_touch_publishes_its_kept_result_again_only_if_it_reads_back():
    result = {"touch_id": "t1", "store": "demo", "shopper": "demo:s", "cart": "c", "step": 1,
              "channel": "email", "band": "high", "outcome": "delivered",
              "at": "2026-11-02T16:05:00+00:00", "provider": "outbox"}  # fmt: skip
    kept = kept_result("done", result)
    assert kept is not None and kept.outcome == "delivered"
    assert kept.at == NOW + timedelta(minutes=5)
    assert kept_result("reported", result) is None  # its result is out: a plain repeat
    for damaged in ({"touch_id": "t1"}, {**result, "outcome": "sent"}, {**result, "at": "soon"}):
        assert kept_result("done", damaged) is None
    assert after_previous("done", "delivered").outcome is Outcome.DEDUPLICATED
    assert after_previous("reported", "delivered").outcome is Outcome.DEDUPLICATED
    assert after_previous("sending", None).outcome is Outcome.UNKNOWN
