"""The pure recovery-policy core of cartbands.

Everything here is a pure function of (state, event, policy, now): bands, segments, plans,
incentives, consent, quiet hours, caps, holdouts, ids. It may import the standard library,
pydantic (the policy model), phonenumbers and zoneinfo. It must never import Faust, aiokafka,
aiohttp or do any I/O, and never read the clock: time is always a parameter.

The API (frozen dataclasses in :mod:`recovery.model` in and out; every decision carries the
reason it took, as text starting with a countable key such as ``quiet_hours:``):

- :func:`recovery.plan.plan_recovery` ``(profile, cart, shopper, policy, now, version) -> Plan``:
  value in the store's currency (or rejection), band, segment, holdout, and the touches with
  due times, channels, templates, incentives after the margin guard, and touch ids.
- :func:`recovery.decide.due_touches` ``(plan, PlanState, profile, cart, policy, now, secret)
  -> Decisions``: which touches are due by ``now`` and, for each, send (with discount code and
  expiry), defer (quiet hours, gap, cap) or skip (exit, consent, suppression, stale).
- :func:`recovery.decide.decide_touch`: the same decision for one touch at one moment.
- :func:`recovery.decide.choose_plan`: one active plan per shopper (keep the higher value).
- :func:`recovery.decide.exit_reason`, :func:`recovery.decide.consent_exit`,
  :func:`recovery.decide.end_plan`: exits with their recorded reason.
- :func:`recovery.codes.discount_code`, :func:`recovery.ids.touch_id`: deterministic ids.
- :func:`recovery.policyset.parse_policy`: a policy file's data validated, errors path-precise.
"""
