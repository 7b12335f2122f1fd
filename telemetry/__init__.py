"""Telemetry: the Prometheus metric definitions of the pipeline and the ``/metrics`` HTTP server.

Holds ``metrics`` (the pipeline's and the shared metrics, plus small typed recording helpers),
``server`` (a stoppable ``/metrics`` endpoint on a loopback port by default) and ``lag``
(consumer lag from fetch high-water marks, computed from duck-typed consumer objects).

May import prometheus-client and the standard library only: agents, the gateway and the
senders import this package, never the other way round.
"""
