"""Benchmarks of issue 7: each one a command that prints a table, never a timed test.

``python -m bench`` runs the suite; ``python -m bench.pipeline``, ``python -m bench.scaleout``
run one benchmark; ``python -m bench.events`` writes a realistic NDJSON event file. Run from
the repository root (the package is not installed). Modules here may import the project's
packages (cartbands, schemas, streams, recovery) but nothing imports bench.
"""
