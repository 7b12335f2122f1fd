"""The pure recovery-policy core of cartbands.

Everything here is a pure function of (state, event, policy, now): bands, segments, plans,
incentives, consent, quiet hours, caps, holdouts, ids. It may import the standard library,
pydantic (the policy model), phonenumbers and zoneinfo. It must never import Faust, aiokafka,
aiohttp or do any I/O, and never read the clock: time is always a parameter.
"""
