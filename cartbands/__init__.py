"""cartbands: the imperative shell around the pure core.

Holds the command line, settings, the policy-file loader, the embedded broker and the
all-in-one runner. It may import every other package; no other package imports it except
tests and benchmarks.
"""

__version__ = "0.1.0"
