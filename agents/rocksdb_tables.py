"""A RocksDB table's store, read and written by the output itself rather than through Faust's
per-key layers.

Faust's ``Store.__setitem__`` encodes the key and the value again, looks the partition's
database up through Faust's current event, and writes every key on its own. The output settles
many writes at once, and it holds their bytes already: a table's changelog record carries the
very bytes its store keeps (a restore writes them to the store as they are). Here they reach
each partition's database as one batch (:class:`StoreBatches`), and the changelog offset they
bring it to rides in the same batch: the store never records an offset without the writes
before it.

A read (:func:`read`) takes the value's bytes from the database of the partition being handled
and decodes them with the pipeline's codec, where Faust's ``get`` would go through its
serializer registry and record the key in its key index (an LRU behind a lock) on every read.

Only a store on ``rocksdict`` (Faust's RocksDB driver here) is handled so; any other store
(``memory://``) is read and written through its mapping.
"""

from __future__ import annotations

import logging
from typing import Any

import rocksdict
from faust.stores.rocksdb import Store as RocksDBStore

from schemas.codec import dumps, loads

log = logging.getLogger(__name__)


def handled_directly(store: Any) -> bool:
    """Whether ``store`` (a table's ``data``) is read and written here."""
    return isinstance(store, RocksDBStore) and store.use_rocksdict


def read(store: RocksDBStore, partition: int, key: str) -> Any:
    """The value of ``key`` in the database of ``partition``, None if it has none."""
    found = store._db_for_partition(partition).get(dumps(key))
    return None if found is None else loads(found)


class StoreBatches:
    """The batches of one settle: per (store, partition), its writes in order, then the
    changelog offset recorded with them."""

    def __init__(self) -> None:
        # (id of the table, partition) -> (its store, its changelog topic, the batch)
        self._batches: dict[tuple[int, int], tuple[RocksDBStore, str, rocksdict.WriteBatch]] = {}

    def _batch(self, table: Any, partition: int) -> rocksdict.WriteBatch:
        found = self._batches.get((id(table), partition))
        if found is None:
            batch = rocksdict.WriteBatch(raw_mode=True)
            topic = table.changelog_topic.get_topic_name()
            self._batches[(id(table), partition)] = (table.data, topic, batch)
            return batch
        return found[2]

    def put(self, table: Any, partition: int, key: bytes, value: bytes | None) -> None:
        """``key`` set to ``value`` (its changelog bytes; None deletes it) in the database of
        ``partition`` of ``table``'s store: a table's key is only ever written under its own
        partition."""
        batch = self._batch(table, partition)
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)

    def record_offset(self, table: Any, partition: int, offset: int) -> None:
        """The changelog offset ``table``'s store holds up to, as Faust's
        ``set_persisted_offset`` records it, in the partition's batch."""
        self._batch(table, partition).put(table.data.offset_key, str(offset).encode())

    def write(self) -> set[str]:
        """Write every batch; the changelog topics of those the store refused (a revoked
        partition's database may be closed): neither their writes nor their offset are in."""
        refused: set[str] = set()
        batches, self._batches = self._batches, {}
        for (_, partition), (store, topic, batch) in batches.items():
            try:
                store._db_for_partition(partition).write(batch)
            except Exception:  # a restore brings the writes back
                log.exception(
                    "table writes of %s[%d] did not reach the local store", topic, partition
                )
                refused.add(topic)
        return refused
