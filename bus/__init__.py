"""The message bus as every process sees it: topic names, Kafka's key-to-partition hash, and
the admin and client helpers (create and verify topics, produce, drain).

Imported by the gateway, the worker, the senders and the shell alike; imports aiokafka, schemas
and nothing of theirs.
"""
