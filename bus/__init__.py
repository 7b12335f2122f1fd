"""The message bus as every process sees it: topic names, Kafka's key-to-partition hash, a
consumer's place in each partition (the offset it folds next), and the admin and client helpers
(create and verify topics, produce, drain).

Imported by the gateway, the worker, the senders and the shell alike; imports aiokafka, schemas
and nothing of theirs.
"""
