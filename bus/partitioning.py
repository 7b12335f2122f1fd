"""Kafka's default partition for a key: murmur2 of the key bytes, as every Kafka client picks it.

The gateway, stage A, replays and the benchmarks place keyed records themselves (to put many
records of one partition into one message) and must land exactly where a plain keyed send by
aiokafka or Faust would. aiokafka's own murmur2 is byte-at-a-time pure Python; this one reads
a 32-bit word at a time (``tests/gateway/test_output.py`` checks it equals aiokafka's).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` (as ``aiokafka.partitioner.murmur2``, a word at a time)."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    for word in struct.unpack_from(f"<{length >> 2}I", data):
        k = (word * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        base = length - tail
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def key_partition(key: bytes, partitions: Sequence[int]) -> int:
    """The partition of ``key`` among ``partitions`` (the topic's, in ascending order)."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
