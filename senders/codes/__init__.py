"""Discount codes created in the shopper's store before a touch carrying one goes out, and
removed when the plan ends: one module per platform, their registry, retries and the ledger
of issued codes (see the README, "Discount codes")."""
