"""A SQLite event log storage whose cost is per batch, not per (asset, partition).

WHY. A single-run backfill of a year records, for each of ~21 partitioned assets and 365 days, one
ASSET_MATERIALIZATION_PLANNED event at run creation and one ASSET_MATERIALIZATION when the step ends
(~15k events). Dagster's stock ``SqliteEventLogStorage`` writes every event on its own: a new
SQLAlchemy engine (so an empty compiled-statement cache), a new connection, a commit with fsync on
the run shard and another on the index shard, a ``has_table`` check that builds yet another engine,
a column inspection, and a close that checkpoints the WAL into the database file. Measured with
``scripts/event_cost.py`` this bookkeeping, not the data, was ~94% of a year's backfill.

What this class changes, and nothing else (same files, same schema, same readers):

1. Batches are real. ``store_event_batch`` writes a batch in one transaction per shard: one
   ``executemany`` into the run shard, one multi-row ``INSERT ... RETURNING id`` into the index shard,
   the asset-event tags in one ``executemany``, and one ``INSERT ... ON CONFLICT DO UPDATE`` per asset
   key for the ``asset_keys`` row (the values the per-event path would have left after the last
   event of that key).
2. Batching is switched on by the storage itself. Dagster only hands batches to
   ``store_event_batch`` when ``DAGSTER_EVENT_BATCH_SIZE`` > 0 (read per event by
   ``DagsterInstance._get_event_batch_size``); the storage sets it for its process when the user has
   not (``os.environ.setdefault``), so nobody has to export it. Child processes inherit it.
3. One planned event per asset instead of one per partition. When the storage answers True to
   ``supports_partition_subset_in_asset_materialization_planned_events`` (Dagster's own switch, also
   reachable as ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS``), run creation emits one
   ASSET_MATERIALIZATION_PLANNED event per asset carrying the whole partitions subset. Dagster warns
   that this loses the per-partition "failed"/"in progress" status, because that status is derived
   from planned rows that have a ``partition`` column. So, in the index shard only, this storage
   writes one planned row per partition key (same serialized event, ``partition`` set), which is
   exactly what those queries read. The run's own log (run shard) keeps the one event per asset.
4. Engines are cached per shard (bounded LRU for run shards), so connections, the compiled-statement
   cache and ``PRAGMA synchronous`` persist; ``has_table`` and the asset-key column check are cached.
   ``synchronous=NORMAL`` in WAL mode (the shards already are WAL): no fsync per commit, the database
   stays consistent on power loss (the last transactions may be lost, never corrupted).
5. Watchers see WAL writes. The stock watcher (the webserver's live run log) watches ``<run>.db``,
   which the stock storage rewrites on every close (WAL checkpoint). With kept-open connections the
   writes land in ``<run>.db-wal`` first, so ``watch`` here also matches the ``-wal`` file.

Dagster internals relied on (dagster 1.13.27; re-check on upgrade, ``retail_lakehouse_tests`` should
cover it): ``SqliteEventLogStorage`` (constructor, ``_connect`` contract, ``_initdb``,
``path_for_shard``, ``conn_string_for_shard``, ``_watchers``/``_obs``), ``SqlEventLogStorage``
(``_event_to_row``, ``_get_asset_entry_values``, ``_tags_for_asset_event``, ``_store_asset_event_tags``
schema, ``index_transaction``), the ``event_logs``/``asset_keys``/``asset_event_tags`` tables,
``SqliteEventLogStorageWatchdog``, the ``DAGSTER_EVENT_BATCH_SIZE`` env var and the
``supports_partition_subset_in_asset_materialization_planned_events`` property. All are private;
the public extension point is only "an event log storage class configured in dagster.yaml". The
class falls back to the stock per-event path for anything it does not batch, and Dagster itself
falls back to per-event writes if ``store_event_batch`` raises.

Measured (``scripts/event_cost.py``: 21 no-op daily assets, the CLI's ``--partition-range``, a
fresh DAGSTER_HOME on local disk, 2 shared cores): a year went from 278 s to 7.4 s (1 day: 2.9 s, the
fixed cost), a 31-day run from 22 s to 4.0 s. The UI's partition statuses (materialized, failed, in
progress), per-partition metadata, asset records and the run's event log match the stock storage.

Known differences and caveats:

- A planned record's own ``partition_key`` is None (its event carries the subset; the index row
  carries the partition). Nothing in Dagster 1.13 or its GraphQL reads that field.
- The run shard and the index shard are separate SQLite files: if the index transaction fails after
  the run-shard insert, Dagster's fallback (per-event writes) duplicates those run-log rows. The
  stock and Postgres storages have the same gap.
- ``synchronous=NORMAL``: on power loss (not on a crash of the process) the last committed events
  can be lost; ``synchronous: FULL`` keeps the stock durability for ~5-15% more time (measured).
- ``base_dir`` defaults from ``DAGSTER_HOME``; ``DagsterInstance.from_config(dir)`` without that
  variable needs ``base_dir`` in the config.
- Setting ``DAGSTER_EVENT_BATCH_SIZE`` is process-wide: other instances in the same process (tests
  with ephemeral instances) also get batches, which their stock storages store one by one.

dagster.yaml::

    event_log_storage:
      module: retail_lakehouse.instance
      class: BatchingSqliteEventLogStorage
      # All optional. base_dir defaults to $DAGSTER_HOME/history/runs (the default layout, so an
      # existing instance keeps its history).
      # config:
      #   batch_size: 10000                # DAGSTER_EVENT_BATCH_SIZE if the user has not set it; 0: off
      #   planned_partitions_subset: true  # one planned event per asset (index rows per partition)
      #   synchronous: NORMAL              # FULL: fsync every commit, as stock
      #   run_shard_engines: 4             # run-shard databases kept open per process
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as db
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from dagster import Field, IntSource, StringSource, BoolSource
from dagster._core.events import ASSET_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import AssetKeyTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
    SqliteEventLogStorageWatchdog,
)
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData

BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
DEFAULT_BATCH_SIZE = 10_000  # a step's materializations for a few years of days in one batch
DEFAULT_RUN_SHARD_ENGINES = 4  # open run-shard databases kept per process (LRU)


# The asset_keys columns SqlEventLogStorage._get_asset_entry_values writes, by event type.
_ASSET_KEY_COLUMNS = {
    DagsterEventType.ASSET_MATERIALIZATION: frozenset(
        {"last_materialization", "last_run_id", "last_materialization_timestamp"}
    ),
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED: frozenset(
        {"last_run_id", "last_materialization_timestamp"}
    ),
    DagsterEventType.ASSET_OBSERVATION: frozenset({"last_materialization_timestamp"}),
}
_ALL_ASSET_KEY_COLUMNS = frozenset().union(*_ASSET_KEY_COLUMNS.values())


def _default_base_dir() -> str:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ValueError("BatchingSqliteEventLogStorage: set base_dir or DAGSTER_HOME")
    return os.path.join(home, "history", "runs")


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` (same files and schema) with real batches; see the module docstring."""

    def __init__(
        self,
        base_dir: str | None = None,
        inst_data: ConfigurableClassData | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        planned_partitions_subset: bool = True,
        synchronous: str = "NORMAL",
        run_shard_engines: int = DEFAULT_RUN_SHARD_ENGINES,
    ):
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA", ""}:
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._batch_size = int(batch_size)
        self._planned_partitions_subset = bool(planned_partitions_subset)
        self._max_run_engines = max(1, int(run_shard_engines))
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._has_table_cache: set[str] = set()
        self._asset_key_index_cols: bool | None = None
        super().__init__(base_dir or _default_base_dir(), inst_data=inst_data)
        # The stock class serializes all access in the process with a plain Lock; connections here
        # are reused, so keep the serialization, re-entrant in case a subclass nests calls.
        self._db_lock = threading.RLock()
        if self._batch_size > 0:
            # Dagster reads this per event (DagsterInstance._get_event_batch_size); an explicit
            # value exported by the user (including 0) wins.
            os.environ.setdefault(BATCH_SIZE_ENV, str(self._batch_size))

    # ---- configuration (dagster.yaml) ---------------------------------------------------------

    @classmethod
    def config_type(cls):
        return {
            "base_dir": Field(StringSource, is_required=False),
            "batch_size": Field(IntSource, is_required=False, default_value=DEFAULT_BATCH_SIZE),
            "planned_partitions_subset": Field(BoolSource, is_required=False, default_value=True),
            "synchronous": Field(StringSource, is_required=False, default_value="NORMAL"),
            "run_shard_engines": Field(
                IntSource, is_required=False, default_value=DEFAULT_RUN_SHARD_ENGINES
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # type: ignore[override]
        return cls(inst_data=inst_data, **dict(config_value))

    # ---- connections --------------------------------------------------------------------------

    def _engine(self, shard: str) -> Engine:
        if self._engines_pid != os.getpid():
            # Forked child: never touch the parent's sqlite handles.
            for engine in self._engines.values():
                engine.dispose(close=False)
            self._engines.clear()
            self._engines_pid = os.getpid()
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = create_engine(
            self.conn_string_for_shard(shard),
            poolclass=db.pool.QueuePool,
            pool_size=1,
            max_overflow=4,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        if self._synchronous:
            pragma = f"PRAGMA synchronous={self._synchronous}"

            @db.event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn, _record):
                cur = dbapi_conn.cursor()
                cur.execute(pragma)
                cur.close()

        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        run_shards = [s for s in self._engines if s != INDEX_SHARD_NAME]
        while len(run_shards) > self._max_run_engines:
            self._engines.pop(run_shards.pop(0)).dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:  # type: ignore[override]
        # Same contract as the stock _connect (a connection inside a transaction, committed on
        # exit), on a cached engine instead of a new one per call.
        with self._db_lock:
            with self._engine(shard).connect() as conn:
                with conn.begin():
                    yield conn

    def has_table(self, table_name: str) -> bool:
        # The stock version builds an engine per call, and is called for every asset event.
        if table_name in self._has_table_cache:
            return True
        found = super().has_table(table_name)
        if found:
            self._has_table_cache.add(table_name)
        return found

    def _has_asset_key_index_cols_on_connection(self, conn: Connection) -> bool:
        if self._asset_key_index_cols is None:
            self._asset_key_index_cols = super()._has_asset_key_index_cols_on_connection(conn)
        return self._asset_key_index_cols

    def _dispose_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def dispose(self) -> None:
        super().dispose()
        self._dispose_engines()

    def wipe(self) -> None:
        # The stock wipe unlinks the run-shard files: close our handles on them first.
        self._dispose_engines()
        super().wipe()

    # ---- planned events -----------------------------------------------------------------------

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return self._planned_partitions_subset or super().supports_partition_subset_in_asset_materialization_planned_events

    @staticmethod
    def _is_batchable(event: EventLogEntry) -> bool:
        dagster_event = event.dagster_event
        return bool(
            dagster_event is not None
            and dagster_event.event_type in ASSET_EVENTS
            and dagster_event.event_type != DagsterEventType.ASSET_FAILED_TO_MATERIALIZE
            and dagster_event.asset_key is not None
        )

    @staticmethod
    def _planned_subset_keys(event: EventLogEntry) -> Sequence[str] | None:
        dagster_event = event.dagster_event
        if dagster_event is None or not dagster_event.is_asset_materialization_planned:
            return None
        subset = dagster_event.asset_materialization_planned_data.partitions_subset
        return list(subset.get_partition_keys()) if subset is not None else None

    # ---- writes -------------------------------------------------------------------------------

    def store_event(self, event: EventLogEntry) -> None:
        # A planned event carrying a partitions subset needs its per-partition index rows even when
        # it arrives alone (batching off, or a one-asset run).
        if self._planned_subset_keys(event) is not None:
            self._store_asset_events([event])
        else:
            super().store_event(event)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        # Batches mix asset planned events with asset-check planned events (sorted by key); write
        # consecutive asset events together and hand anything else to the stock per-event path,
        # keeping the order.
        pending: list[EventLogEntry] = []
        for event in events:
            if self._is_batchable(event):
                pending.append(event)
                continue
            if pending:
                self._store_asset_events(pending)
                pending = []
            super().store_event(event)
        if pending:
            self._store_asset_events(pending)

    def _store_asset_events(self, events: Sequence[EventLogEntry]) -> None:
        by_run: dict[str, list[EventLogEntry]] = defaultdict(list)
        for event in events:
            by_run[event.run_id].append(event)
        for run_events in by_run.values():
            self._store_asset_events_for_run(run_events)

    def _store_asset_events_for_run(self, events: Sequence[EventLogEntry]) -> None:
        rows = [self._event_to_row(event) for event in events]  # serializes each event once

        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)

        # Index rows: one per event, or one per partition key for a planned event with a subset.
        index_rows: list[dict[str, Any]] = []
        first_index_row: list[int] = []
        for event, row in zip(events, rows):
            first_index_row.append(len(index_rows))
            keys = self._planned_subset_keys(event)
            if keys:
                index_rows.extend({**row, "partition": key} for key in keys)
            else:
                index_rows.append(row)

        with self.index_transaction() as conn:
            ids = self._insert_returning_ids(conn, index_rows)
            event_ids = [ids[i] for i in first_index_row]

            tagged = [
                (event, event_id)
                for event, event_id in zip(events, event_ids)
                if event.dagster_event.is_step_materialization
                or event.dagster_event.is_asset_observation
            ]
            if tagged:
                self._store_asset_event_tags(conn, [e for e, _ in tagged], [i for _, i in tagged])

            for key, values in self._asset_key_values(conn, events, event_ids).items():
                statement = (
                    sqlite_insert(AssetKeyTable)
                    .values(asset_key=key, **values)
                    .on_conflict_do_update(index_elements=[AssetKeyTable.c.asset_key], set_=values)
                )
                conn.execute(statement)

    def _asset_key_values(
        self, conn: Connection, events: Sequence[EventLogEntry], event_ids: Sequence[int]
    ) -> dict[str, dict[str, Any]]:
        """Per asset key, the ``asset_keys`` columns that storing ``events`` one by one would leave.

        Walks each key's events newest first and asks ``_get_asset_entry_values`` (which serializes
        the whole event record for a materialization) only for events that still own a column: for
        a batch of 365 materializations of one asset, that is the last one, not all 365.
        """
        has_cols = self._has_asset_key_index_cols_on_connection(conn)
        by_key: dict[str, list[tuple[EventLogEntry, int]]] = defaultdict(list)
        for event, event_id in zip(events, event_ids):
            by_key[event.dagster_event.asset_key.to_string()].append((event, event_id))
        out: dict[str, dict[str, Any]] = {}
        for key, pairs in by_key.items():
            merged: dict[str, Any] = {}
            owned: set[str] = set()
            for event, event_id in reversed(pairs):
                columns = _ASSET_KEY_COLUMNS.get(event.dagster_event.event_type, frozenset())
                if not has_cols:
                    columns = columns - {"last_materialization_timestamp"}
                if not columns - owned:
                    continue
                values = self._get_asset_entry_values(event, event_id, has_cols)
                if set(values) - columns:
                    # Dagster now writes a column this map does not know: replay every event.
                    return self._asset_key_values_sequential(events, event_ids, has_cols)
                for column, value in values.items():
                    merged.setdefault(column, value)  # newest event wins, as in sequential writes
                owned |= columns
                if owned >= _ALL_ASSET_KEY_COLUMNS:
                    break
            if merged:
                out[key] = merged
        return out

    def _asset_key_values_sequential(self, events, event_ids, has_cols) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for event, event_id in zip(events, event_ids):
            values = self._get_asset_entry_values(event, event_id, has_cols)
            if values:
                out.setdefault(event.dagster_event.asset_key.to_string(), {}).update(values)
        return out

    @staticmethod
    def _insert_returning_ids(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
        # SQLAlchemy's "insertmanyvalues" turns this into a few multi-row INSERT ... RETURNING
        # statements and returns the ids in parameter order.
        statement = SqlEventLogStorageTable.insert().returning(
            SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
        )
        return [row[0] for row in conn.execute(statement, list(rows))]

    # ---- watchers -----------------------------------------------------------------------------

    def watch(self, run_id: str, cursor: str | None, callback) -> None:
        from watchdog.observers import Observer

        if not self._obs:
            self._obs = Observer()
            self._obs.start()
        watchdog = _WalAwareWatchdog(self, run_id, callback, cursor)
        self._watchers[run_id][callback] = (
            watchdog,
            self._obs.schedule(watchdog, self._base_dir, recursive=True),
        )


class _WalAwareWatchdog(SqliteEventLogStorageWatchdog):
    """The stock run-log watcher, also woken by writes to ``<run>.db-wal``."""

    def __init__(self, event_log_storage, run_id, callback, cursor, **kwargs):
        super().__init__(event_log_storage, run_id, callback, cursor, **kwargs)
        self._patterns = [self._log_path, self._log_path + "-wal"]
        self._lock = threading.Lock()

    @property
    def patterns(self):
        return self._patterns

    def on_modified(self, event) -> None:
        if event.src_path in self._patterns:
            with self._lock:
                self._process_log()
