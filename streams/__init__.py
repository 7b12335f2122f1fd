"""The Faust application: topics, tables and their settings.

Builds a configured ``faust.App`` for a broker and a policy; the agents register themselves on
it. May import faust, schemas, recovery and agents; never the CLI.
"""
