"""What a process is told: its settings (flags and ``CARTBANDS_*`` variables), the policy
file (loaded, validated and its templates checked) and how it logs.

Shared by the gateway, the worker, the senders and the shell. Imports the core and, to check a
policy's templates, the senders' template registry (``senders.templates``), nothing else of
theirs.
"""
