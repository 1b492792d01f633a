"""Delta tables for every layer: where a table lives, how a window of partitions is replaced.

Why not the stock `DeltaLakePolarsIOManager`: it builds its predicate from the first day of a
partition range only, so a single-run backfill either fails or silently reads one day (PLATFORM.md).
Here a partitioned write replaces exactly the run's window `[first, end)` with predicate
overwrites (one per month of a long window), and a read filters the window the partition mapping
asks for; unpartitioned readers see the whole table.

Three layers, each usable on its own: free functions over a table URI (what a test or a script
calls); `Lakehouse`, the `lake` resource that knows where each asset's table lives and offers those
functions by asset key (what ops, checks and the stream use); and `DeltaIOManager`, which turns an
asset's returned frame into one of those writes, with its metadata and its audit-log row.
"""


import contextlib
import datetime as dt
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Schema, write_deltalake
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import AddAction
from pydantic import PrivateAttr

from retail_lakehouse import catalog
from retail_lakehouse.locks import LOCK_FILE_NAME, lake_lock_for_run
from retail_lakehouse.partitions import check_range_tags, days_in, window_dates
from retail_lakehouse.redaction import redact
from retail_lakehouse.settings import LOCK_TIMEOUT_SECONDS

PARTITION_COLUMN = "partition_column"
COLUMN_LINEAGE = "dagster/column_lineage"
AUDIT_LOG_KEY = dg.AssetKey(["ops", "audit_log"])
# A failed write's message in the audit log: enough to tell what broke, not a whole traceback.
AUDIT_MESSAGE_CHARS = 500
# An input whose definition metadata lists columns under this name is loaded with those columns,
# once per run and table version, and kept for the run's other such inputs (`Lakehouse.read_shared`):
# the whole-table analytics read the same year of facts. Up to SHARED_READ_BYTES in all; a larger
# table is read for each input, as before.
SHARED_COLUMNS = "shared_columns"
SHARED_READ_BYTES = 512 * 2**20
# What a kept value is taken to need when deciding, before reading, whether the columns would fit
# (the analytics' 14 columns of fact_sales at scale 1: 126 MiB for 1.09M rows, 8.6 bytes a value),
# so that a table too large to keep is not read with every shared column by each step.
SHARED_BYTES_PER_VALUE = 16

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class StagedFile:
    """A data file an engine wrote into a partitioned table's folder (`<column>=<day>/...`, without
    the partition column, as delta-rs lays out its own) that no commit references yet."""

    day: dt.date
    path: str  # relative to the table's folder
    size: int
    rows: int


@dataclass(frozen=True)
class Audited:
    """A frame to publish, with what failed its blocking audit (write–audit–publish).

    `failed_days` of a partitioned table's window are left out of the overwrite, so the table keeps
    their previous version; `failed` keeps an unpartitioned table at its previous version.
    """

    frame: pl.DataFrame | pl.LazyFrame
    failed_days: frozenset[dt.date] = frozenset()
    failed: bool = False
    # More metadata for each day's materialization (a partitioned table), beside its row count.
    day_metadata: Mapping[dt.date, Mapping[str, object]] = field(default_factory=dict)
    # Days whose stored rows are already what this run would write: left as they are, published.
    unchanged_days: frozenset[dt.date] = frozenset()
    # Recorded in the write's commit(s) (Delta commitInfo), for a later run to read (`Lakehouse.history`).
    commit_metadata: Mapping[str, str] = field(default_factory=dict)
    # The frame's rows as files already in the table's folder (an engine's workers wrote them):
    # the published days' files are committed as they are, instead of the frame being written.
    staged: tuple[StagedFile, ...] | None = None


class TableNotFound(FileNotFoundError):
    """An asset's Delta table does not exist yet."""


@dataclass(frozen=True)
class AuditEntry:
    """One row of `ops/audit_log`: a write of `key`'s table by a run, or a write that failed."""

    key: dg.AssetKey
    partitions: str
    record_count: int
    status: str
    error_class: str | None = None
    error_message: str | None = None

    @classmethod
    def failed(cls, key: dg.AssetKey, partitions: str, error: BaseException) -> "AuditEntry":
        # The message is kept short and stripped of anything that looks like a credential.
        return cls(key, partitions, 0, "FAILED", type(error).__name__, redact(str(error))[:AUDIT_MESSAGE_CHARS])


def window_predicate(column: str, first: dt.date, end: dt.date, keep: Iterable[dt.date] = ()) -> str:
    """A Delta predicate for `first <= column < end` and not one of `keep`, built from dates only."""
    if not _IDENTIFIER.match(column):
        raise ValueError(f"not a column name: {column!r}")
    keep = sorted(keep)
    if not all(isinstance(d, dt.date) for d in (first, end, *keep)):
        raise TypeError("window bounds must be dates")
    predicate = f"{column} >= '{first.isoformat()}' AND {column} < '{end.isoformat()}'"
    if keep:
        predicate += f" AND {column} NOT IN (" + ", ".join(f"'{d.isoformat()}'" for d in keep) + ")"
    return predicate


def _options(storage_options: Mapping[str, str] | None) -> dict[str, str] | None:
    return dict(storage_options or {}) or None


def table_exists(uri: str, storage_options: Mapping[str, str] | None = None) -> bool:
    return DeltaTable.is_deltatable(uri, storage_options=dict(storage_options or {}))


# The tables a run has opened, by the thread that runs its steps (see `Lakehouse.setup_for_execution`):
# opening a table again reads only the commits since (`update_incremental`, ~1 ms), where opening
# it anew reads its checkpoint and lists every file (fact_sales, a year: ~22 ms); a daily run opens
# its ~40 tables ~100 times. Other threads, and code outside a run, open tables anew.
_RUN_TABLES: dict[int, dict[str, DeltaTable]] = {}


def _table(uri: str, storage_options: Mapping[str, str] | None = None) -> DeltaTable:
    """The table at `uri` at its newest version."""
    kept = _RUN_TABLES.get(threading.get_ident())
    if kept is None:
        return DeltaTable(uri, storage_options=_options(storage_options))
    table = kept.get(uri)
    if table is None:
        table = kept[uri] = DeltaTable(uri, storage_options=_options(storage_options))
    else:
        table.update_incremental()
    return table


def table_version(uri: str, storage_options: Mapping[str, str] | None = None) -> int | None:
    return _table(uri, storage_options).version() if table_exists(uri, storage_options) else None


def _commit(metadata: Mapping[str, str] | None) -> CommitProperties | None:
    return CommitProperties(custom_metadata=dict(metadata)) if metadata else None


def _collect(obj: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    if isinstance(obj, pl.LazyFrame):
        return obj.collect(engine="streaming")
    if isinstance(obj, pl.DataFrame):
        return obj
    raise TypeError(f"expected a polars DataFrame or LazyFrame, got {type(obj).__name__}")


# Opening a table replays its JSON commits since the last checkpoint, and a run opens each of its
# tables several times (exists, version, scan, write). delta-rs checkpoints every 100th commit by
# default; every 10th keeps the replay short: fact_sales after 39 commits opened in 44 ms from JSON
# commits alone, 14 ms from a checkpoint. Set when a table is created, or by its next write.
TABLE_PROPERTIES = {"delta.checkpointInterval": "10"}


def _open(uri: str, storage_options: Mapping[str, str] | None) -> DeltaTable:
    table = _table(uri, storage_options)
    if any(table.metadata().configuration.get(k) != v for k, v in TABLE_PROPERTIES.items()):
        table.alter.set_table_properties(TABLE_PROPERTIES)
    return table


def _write(uri: str, frame: pl.DataFrame | pl.LazyFrame, storage_options: Mapping[str, str] | None, **kwargs) -> int:
    """One `write_deltalake`; returns the version it committed. The table is opened once: a write
    given the open table updates it, so asking its version does not replay the log again."""
    frame = _collect(frame)
    try:
        table = _open(uri, storage_options)
    except TableNotFoundError:
        write_deltalake(uri, frame.to_arrow(), storage_options=_options(storage_options), configuration=TABLE_PROPERTIES, **kwargs)
        return 0
    write_deltalake(table, frame.to_arrow(), **kwargs)
    return table.version()


# A window longer than this is written this many days at a time, a commit each: delta-rs keeps a
# writer with its buffers open for every partition of a write, so a year in one commit needed twice
# the table's memory (bronze sales at scale 1: 2.0 GB in one commit, 1.2 GB a month at a time).
# A frame smaller than WRITE_CHUNK_BYTES is written in one commit all the same: its buffers are
# small, and each commit costs ~20 ms (a year of a small table: 12 commits, 0.34 s; one, 0.13 s).
WRITE_CHUNK_DAYS = 31
WRITE_CHUNK_BYTES = 64 * 2**20


def write_window(
    uri: str,
    frame: pl.DataFrame | pl.LazyFrame,
    column: str,
    first: dt.date,
    end: dt.date,
    storage_options: Mapping[str, str] | None = None,
    keep: Iterable[dt.date] = (),
    commit_metadata: Mapping[str, str] | None = None,
) -> int:
    """Replace the rows of `[first, end)` in a table partitioned by `column`, except the days in
    `keep`, which stay as they are; returns the version. `commit_metadata` goes into every commit.

    Rows outside the window, or on a kept day, are refused before anything is written, so a bug
    upstream can never overwrite a neighbouring day. A window of more than `WRITE_CHUNK_DAYS` whose
    frame is larger than `WRITE_CHUNK_BYTES` is replaced in consecutive commits of that many days:
    a reader during the write sees each chunk old or new, never a day half-written. A LazyFrame (a
    long window spilled to local files) is written in those chunks, each collected in turn.
    """
    keep = sorted(set(keep))
    outside = frame.lazy().filter(
        (pl.col(column) < first) | (pl.col(column) >= end) | pl.col(column).is_null() | pl.col(column).is_in(keep)
    ).select(pl.len().alias("rows"), pl.col(column).unique().sort().head(5).implode().alias("sample")).collect()
    if outside["rows"].item():
        raise ValueError(
            f"{outside['rows'].item()} rows have {column} outside the partition window "
            f"{first}..{end - dt.timedelta(days=1)} (e.g. {outside['sample'].item().to_list()}); nothing was written to {uri}"
        )
    version = None
    large = not isinstance(frame, pl.DataFrame) or frame.estimated_size() > WRITE_CHUNK_BYTES
    chunk = dt.timedelta(days=WRITE_CHUNK_DAYS) if large else end - first
    lo = first
    while lo < end:
        hi = min(lo + chunk, end)
        kept = [d for d in keep if lo <= d < hi]
        if len(kept) < (hi - lo).days:
            part = frame if (lo, hi) == (first, end) else frame.filter(pl.col(column).is_between(lo, hi, closed="left"))
            version = _write(
                uri, part, storage_options, mode="overwrite", predicate=window_predicate(column, lo, hi, kept), partition_by=[column],
                commit_properties=_commit(commit_metadata),
            )
        lo = hi
    return table_version(uri, storage_options) if version is None else version


def write_days(
    uri: str, frame: pl.DataFrame, column: str, days: Iterable[dt.date], storage_options: Mapping[str, str] | None = None
) -> int:
    """Replace the rows of the given days (any set, not only a window) in one commit; returns the version."""
    days = sorted(set(days))
    if not days or not all(isinstance(d, dt.date) for d in days) or not _IDENTIFIER.match(column):
        raise ValueError(f"write_days needs a column name and dates, got {column!r}, {days[:3]}")
    stray = frame.filter(~pl.col(column).is_in(days) | pl.col(column).is_null())
    if stray.height:
        raise ValueError(f"{stray.height} rows have {column} outside the days being replaced; nothing was written to {uri}")
    predicate = f"{column} IN (" + ", ".join(f"'{d.isoformat()}'" for d in days) + ")"
    return _write(uri, frame, storage_options, mode="overwrite", predicate=predicate, partition_by=[column])


def _delta_schema(schema: pl.Schema) -> Schema:
    return Schema.from_arrow(pl.DataFrame(schema=schema).to_arrow().schema)


def stored_schema(schema: pl.Schema) -> pl.Schema:
    """The Polars types of what a Delta table stores for `schema` (no unsigned integers, no
    categoricals): what delta-rs casts a frame to when it writes it."""
    return pl.DataFrame(pa.schema(_delta_schema(schema).to_arrow()).empty_table()).schema


def commit_staged(
    uri: str,
    staged: Sequence[StagedFile],
    schema: pl.Schema,
    column: str,
    first: dt.date,
    end: dt.date,
    storage_options: Mapping[str, str] | None = None,
    keep: Iterable[dt.date] = (),
    commit_metadata: Mapping[str, str] | None = None,
) -> int:
    """Replace the rows of `[first, end)` but the days in `keep` with the staged files of those
    days, in one commit; returns the version. The files of other days are deleted, not committed.

    What `write_window` does with a frame, without rewriting it: the files are already Parquet in
    the table's folder, so only the Delta log is written. `schema` is the rows' (partition column
    included); a table that does not exist yet is created with it, an existing one must match it.
    The table is on local disk: the files' modification times are read from it.
    """
    keep = set(keep)
    publish = [d for d in days_in(first, end) if d not in keep]
    chosen = [f for f in staged if f.day not in keep and first <= f.day < end]
    discard_staged(uri, [f for f in staged if f not in chosen])
    if not publish:
        return table_version(uri, storage_options)
    delta_schema = _delta_schema(schema)
    try:
        table = _open(uri, storage_options)
    except TableNotFoundError:
        table = DeltaTable.create(uri, delta_schema, partition_by=[column], storage_options=_options(storage_options), configuration=TABLE_PROPERTIES)
    want, have = [(f.name, f.type) for f in delta_schema.fields], [(f.name, f.type) for f in table.schema().fields]
    if want != have or table.metadata().partition_columns != [column]:
        raise ValueError(f"the staged files do not match the table at {uri}: columns {want} partitioned by {column}, the table {have}")
    actions = [
        AddAction(f.path, f.size, {column: f.day.isoformat()}, _mtime_ms(uri, f.path), True, json.dumps({"numRecords": f.rows}))
        for f in chosen
    ]
    table.create_write_transaction(
        actions, mode="overwrite", schema=table.schema(), partition_by=[column],
        partition_filters=[(column, "in", [d.isoformat() for d in publish])], commit_properties=_commit(commit_metadata),
    )
    # The transaction leaves the open table at the version before it (delta-rs 1.6).
    table.update_incremental()
    return table.version()


def discard_staged(uri: str, staged: Iterable[StagedFile]) -> None:
    """Delete staged files no commit will reference (a local table)."""
    for f in staged:
        os.remove(os.path.join(uri, f.path))


def _mtime_ms(uri: str, path: str) -> int:
    return int(os.stat(os.path.join(uri, path)).st_mtime * 1000)


def write_whole(uri: str, frame: pl.DataFrame, storage_options: Mapping[str, str] | None = None) -> int:
    """Replace an unpartitioned table; its schema follows the frame."""
    return _write(uri, frame, storage_options, mode="overwrite", schema_mode="overwrite")


def append(uri: str, frame: pl.DataFrame, storage_options: Mapping[str, str] | None = None, add_columns: bool = False) -> int:
    """Append `frame`; with `add_columns`, columns the table lacks are added to its schema."""
    return _write(uri, frame, storage_options, mode="append", **({"schema_mode": "merge"} if add_columns else {}))


def merge(
    uri: str,
    frame: pl.DataFrame,
    on: Sequence[str],
    storage_options: Mapping[str, str] | None = None,
    update: bool = True,
) -> int:
    """MERGE `frame` into the table on the `on` columns: matched rows are replaced (unless `update`
    is False: insert only), the others inserted; a missing table is created from the frame."""
    if not on or not all(_IDENTIFIER.match(c) for c in on):
        raise ValueError(f"merge needs column names to match on, got {list(on)!r}")
    if not table_exists(uri, storage_options):
        return append(uri, frame, storage_options)
    table = _table(uri, storage_options)
    merger = table.merge(
        frame.to_arrow(),
        predicate=" AND ".join(f"t.{c} = s.{c}" for c in on),
        source_alias="s",
        target_alias="t",
    )
    if update:
        merger = merger.when_matched_update_all()
    merger.when_not_matched_insert_all().execute()
    return table.version()


def scan_window(
    uri: str,
    column: str | None = None,
    first: dt.date | None = None,
    end: dt.date | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> pl.LazyFrame:
    """A lazy scan of a table, filtered to `[first, end)` of `column` when given (partition pruning)."""
    lf = pl.scan_delta(_table(uri, storage_options), storage_options=_options(storage_options))
    if column is not None:
        lf = lf.filter(pl.col(column).is_between(first, end, closed="left"))
    return lf


class Lakehouse(dg.ConfigurableResource):
    """The Delta tables of the lakehouse, by asset key (`lake`); subclasses say where tables live.

    The one client of storage for the I/O manager, the stream, maintenance and the checks that read
    stored tables, so every one of them reaches a table the same way: same location, same
    credential, same access check and the same readable errors.

    A run holds the lakehouse's lock from before its first step to after its last (see `locks`),
    so a second run over the same tables waits for it instead of interleaving writes.
    """

    lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS
    _held: contextlib.ExitStack = PrivateAttr(default_factory=contextlib.ExitStack)
    # A run's audit rows, written in one commit when it ends (None outside a run: written at once).
    _pending_audit: list[tuple[str, AuditEntry, dt.datetime]] | None = PrivateAttr(default=None)
    # A run's shared reads (None outside a run: nothing is kept).
    _shared: dict[tuple, pl.DataFrame] | None = PrivateAttr(default=None)

    def table_uri(self, key: dg.AssetKey) -> str:
        raise NotImplementedError

    def lock_file(self) -> Path | None:
        """The file runs writing these tables queue on; None leaves it to Delta's conflict checks."""
        return None

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Once per run, before its first step: a reversed range fails here once, not in every step.
        if context.run is not None:
            check_range_tags(context.run.tags)
        lock = self.lock_file()
        if lock is not None:
            what = f"the lakehouse at {lock.parent}"
            self._held.enter_context(lake_lock_for_run(lock, what, context, self.lock_timeout_seconds))
        self._pending_audit = []
        self._shared = {}
        _RUN_TABLES[threading.get_ident()] = {}

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # After the last step, failed or not, and still under the run's lock.
        try:
            self._flush_audit(context.instance)
        finally:
            self._shared = None
            _RUN_TABLES.pop(threading.get_ident(), None)
            self._held.close()

    def storage_options(self, key: dg.AssetKey) -> dict[str, str]:
        return {}

    def display_uri(self, key: dg.AssetKey) -> str:
        """The location shown in metadata and messages (never carries a credential)."""
        return self.table_uri(key)

    def preflight(self, *keys: dg.AssetKey) -> None:
        """Fail now, with a clear message, if a table of `keys` cannot be reached (remote stores)."""

    @contextlib.contextmanager
    def storage_errors(self, key: dg.AssetKey, action: str) -> Iterator[None]:
        """Wraps every storage call on `key`'s table; remote stores check access first and turn
        storage errors into messages that say what to fix."""
        yield

    def exists(self, key: dg.AssetKey) -> bool:
        with self.storage_errors(key, "looking up"):
            return table_exists(self.table_uri(key), self.storage_options(key))

    def version(self, key: dg.AssetKey) -> int | None:
        with self.storage_errors(key, "reading the version of"):
            return table_version(self.table_uri(key), self.storage_options(key))

    def scan(
        self, key: dg.AssetKey, column: str | None = None, first: dt.date | None = None, end: dt.date | None = None
    ) -> pl.LazyFrame:
        """The table, lazily, filtered to `[first, end)` of `column` when given."""
        with self.storage_errors(key, "reading"):
            uri, options = self.table_uri(key), self.storage_options(key)
            if not table_exists(uri, options):
                raise TableNotFound(
                    f"{key.to_user_string()} has not been materialized yet: no Delta table at "
                    f"{self.display_uri(key)}. Materialize it (and its upstream assets) first."
                )
            return scan_window(uri, column, first, end, options)

    def file_uris(
        self, key: dg.AssetKey, column: str | None = None, first: dt.date | None = None, end: dt.date | None = None
    ) -> list[str]:
        """The data files of the table's current version (those that can hold rows of `[first,
        end)` of `column`, when given), for engines that read Parquet themselves: the folder also
        holds files that deletes and overwrites removed."""
        with self.storage_errors(key, "listing the files of"):
            uri, options = self.table_uri(key), self.storage_options(key)
            if not table_exists(uri, options):
                raise TableNotFound(f"{key.to_user_string()} has not been materialized yet: no Delta table at {self.display_uri(key)}.")
            table = _table(uri, options)
            # Files alone do not tell which rows a deletion vector removed or which column is which.
            unsupported = {"deletionVectors", "columnMapping"} & set(table.protocol().reader_features or ())
            if unsupported:
                raise ValueError(f"{key.to_user_string()} uses {', '.join(sorted(unsupported))}: its files cannot be read without a Delta reader")
            # Prunes by partition values and file statistics; the reader still filters the rows.
            predicate = window_predicate(column, first, end) if column is not None else None
            return table.file_uris(file_pruning_predicate=predicate)

    def read_shared(
        self, key: dg.AssetKey, columns: Sequence[str], column: str | None = None, first: dt.date | None = None, end: dt.date | None = None
    ) -> pl.LazyFrame:
        """The table (`[first, end)` of `column`, when given), lazily. In a run, its `columns` are
        read once per table version and window and kept for the run's other steps, unless they
        would take what is kept past SHARED_READ_BYTES: then each step reads its own columns."""
        if self._shared is None:
            return self.scan(key, column, first, end)
        at = (key, self.version(key), column, first, end)
        kept = self._shared.get(at)
        if kept is not None and set(columns) <= set(kept.columns):
            return kept.lazy()
        # Planned only on a miss: a scan lists the table's files (those of its window).
        scan = self.scan(key, column, first, end)
        held = sum(f.estimated_size() for f in self._shared.values())
        if held + self._rows(key) * len(columns) * SHARED_BYTES_PER_VALUE > SHARED_READ_BYTES:
            return scan
        frame = scan.select(columns).collect()
        if held + frame.estimated_size() <= SHARED_READ_BYTES:
            self._shared[at] = frame
        return frame.lazy()

    def _files(self, key: dg.AssetKey) -> pl.DataFrame:
        """The data files of the table's current version as its log lists them (Delta add actions:
        path, num_records, partition.<column>, ...); empty if there is no table."""
        with self.storage_errors(key, "reading the files of"):
            uri, options = self.table_uri(key), self.storage_options(key)
            if not table_exists(uri, options):
                return pl.DataFrame()
            return pl.DataFrame(_table(uri, options).get_add_actions(flatten=True))

    def _rows(self, key: dg.AssetKey) -> int:
        """The table's rows, as its log counts them (files without the count add none)."""
        files = self._files(key)
        return int(files.get_column("num_records").sum() or 0) if files.height else 0

    def newest_partition(self, key: dg.AssetKey, column: str) -> dt.date | None:
        """The newest `column` value of a table partitioned by it, from its log: the partition
        value of the newest data file that holds rows (a year of facts: ~20 ms, against ~50 ms
        for the column's max read from the files). None if the table or its rows do not exist."""
        files = self._files(key)
        if files.is_empty():
            return None
        holding = files.filter(pl.col("num_records").is_null() | (pl.col("num_records") > 0))
        return holding.get_column(f"partition.{column}").max()

    def read(self, key: dg.AssetKey) -> pl.DataFrame:
        with self.storage_errors(key, "reading"):
            return self.scan(key).collect()

    def write_window(
        self, key: dg.AssetKey, frame: pl.DataFrame | pl.LazyFrame, column: str, first: dt.date, end: dt.date, keep: Iterable[dt.date] = (),
        commit_metadata: Mapping[str, str] | None = None,
    ) -> int:
        with self.storage_errors(key, "writing"):
            return write_window(self.table_uri(key), frame, column, first, end, self.storage_options(key), keep, commit_metadata)

    def commit_staged(
        self, key: dg.AssetKey, staged: Sequence[StagedFile], schema: pl.Schema, column: str, first: dt.date, end: dt.date,
        keep: Iterable[dt.date] = (), commit_metadata: Mapping[str, str] | None = None,
    ) -> int:
        with self.storage_errors(key, "committing to"):
            return commit_staged(self.table_uri(key), staged, schema, column, first, end, self.storage_options(key), keep, commit_metadata)

    def history(self, key: dg.AssetKey, limit: int) -> list[dict]:
        """The table's last `limit` commits (commitInfo, with any `commit_metadata`), newest first;
        none if the table does not exist."""
        with self.storage_errors(key, "reading the history of"):
            uri, options = self.table_uri(key), self.storage_options(key)
            if not table_exists(uri, options):
                return []
            return _table(uri, options).history(limit)

    def write_days(self, key: dg.AssetKey, frame: pl.DataFrame, column: str, days: Iterable[dt.date]) -> int:
        with self.storage_errors(key, "writing"):
            return write_days(self.table_uri(key), frame, column, days, self.storage_options(key))

    def write_whole(self, key: dg.AssetKey, frame: pl.DataFrame) -> int:
        with self.storage_errors(key, "writing"):
            return write_whole(self.table_uri(key), frame, self.storage_options(key))

    def append(self, key: dg.AssetKey, frame: pl.DataFrame, add_columns: bool = False) -> int:
        with self.storage_errors(key, "appending to"):
            return append(self.table_uri(key), frame, self.storage_options(key), add_columns)

    def merge(self, key: dg.AssetKey, frame: pl.DataFrame, on: Sequence[str], update: bool = True) -> int:
        with self.storage_errors(key, "merging into"):
            return merge(self.table_uri(key), frame, on, self.storage_options(key), update)

    @contextlib.contextmanager
    def failures_audited(self, run_id: str, key: dg.AssetKey, partitions: str = "all", log=None) -> Iterator[None]:
        """A write in the block that raises gets a FAILED row (its error class and a masked
        message), and its own error is raised. If the row cannot be recorded either (outside a run
        it is written at once, maybe to the very store that just failed), that is only logged."""
        try:
            yield
        except Exception as err:
            try:
                self.audit(run_id, [AuditEntry.failed(key, partitions, err)])
            except Exception as audit_err:
                if log is not None:
                    log.warning(f"the failed write of {key.to_user_string()} could not be audited: {type(audit_err).__name__}")
            raise

    def audit(self, run_id: str, entries: Iterable[AuditEntry]) -> None:
        """Record writes in `ops/audit_log`. Within a run they are kept until the run ends and then
        written in one commit: a commit per write would cost more than most writes (each opens the
        audit log, whose every commit lengthens what the next one reads)."""
        now = dt.datetime.now(dt.timezone.utc)
        rows = [(run_id, e, now) for e in entries]
        if self._pending_audit is None:
            self._write_audit(rows)
        else:
            self._pending_audit.extend(rows)

    def _flush_audit(self, instance: dg.DagsterInstance | None = None) -> None:
        """Write the audit rows kept so far in this run, and report the write to `instance`: the
        audit log is written here, by the resource, not by a step that could report it."""
        if self._pending_audit:
            rows, self._pending_audit = self._pending_audit, []
            version = self._write_audit(rows)
            if instance is not None:
                failed = sum(e.status == "FAILED" for _, e, _ in rows)
                instance.report_runless_asset_event(dg.AssetMaterialization(
                    AUDIT_LOG_KEY,
                    description=f"{len(rows)} writes of run {rows[0][0]}",
                    metadata={"run_id": rows[0][0], "rows_appended": len(rows), "failed_writes": failed,
                              "delta_version": -1 if version is None else version, "table_uri": self.display_uri(AUDIT_LOG_KEY)},
                ))

    def _write_audit(self, rows: list[tuple[str, AuditEntry, dt.datetime]]) -> int | None:
        if not rows:
            return None
        record = pl.DataFrame(
            {
                "run_id": [run_id for run_id, _, _ in rows],
                "layer": [e.key.path[0] for _, e, _ in rows],
                "table": ["/".join(e.key.path[1:]) for _, e, _ in rows],
                "partitions": [e.partitions for _, e, _ in rows],
                "record_count": [e.record_count for _, e, _ in rows],
                "status": [e.status for _, e, _ in rows],
                "error_class": [e.error_class for _, e, _ in rows],
                "error_message": [e.error_message for _, e, _ in rows],
                "timestamp": [at for _, _, at in rows],
            },
            schema=catalog.schema(AUDIT_LOG_KEY.path),
        )
        # An audit log an older release wrote gains the error columns on the first write.
        return self.append(AUDIT_LOG_KEY, record, add_columns=True)


class LocalLakehouse(Lakehouse):
    """Tables on local disk at `<root>/<layer>/<table>` (the embedded default)."""

    root: str

    def table_uri(self, key: dg.AssetKey) -> str:
        return str(Path(self.root).absolute().joinpath(*key.path))

    def lock_file(self) -> Path:
        return Path(self.root).absolute() / LOCK_FILE_NAME


class DeltaIOManager(dg.ConfigurableIOManager):
    """Stores each asset `[layer, table]` as a Delta table of `lake`.

    An asset opts into partition-wise writes with definition metadata `partition_column`, the Date
    column that carries its daily partition key.
    """

    lake: Lakehouse

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame | Audited) -> None:
        if obj is None:
            return
        lake, key = self.lake, context.asset_key
        # Both containers are checked before anything is written, so a refused audit log cannot
        # leave a table written and its write unrecorded.
        lake.preflight(key, AUDIT_LOG_KEY)
        window = "all"
        if context.definition_metadata.get(PARTITION_COLUMN) and context.has_asset_partitions:
            first, end = window_dates(context.asset_partitions_time_window)
            window = f"{first}..{end - dt.timedelta(days=1)}"
        with lake.failures_audited(context.run_id, key, window, context.log):
            entry = self._write(context, obj)
        lake.audit(context.run_id, [entry])

    def _write(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame | Audited) -> AuditEntry:
        lake, key = self.lake, context.asset_key
        audited = obj if isinstance(obj, Audited) else Audited(obj)
        column = context.definition_metadata.get(PARTITION_COLUMN)
        partitioned = bool(column) and context.has_asset_partitions
        # A partitioned window stays lazy, if it is: write_window collects it a chunk at a time.
        with lake.storage_errors(key, "writing"):
            frame = audited.frame if partitioned else _collect(audited.frame)
        # Column lineage is materialization metadata to Dagster: each write reports its table's.
        lineage = context.definition_metadata.get(COLUMN_LINEAGE)
        if partitioned:
            first, end = window_dates(context.asset_partitions_time_window)
            failed = sorted(d for d in audited.failed_days if first <= d < end)
            kept = sorted({*failed, *(d for d in audited.unchanged_days if first <= d < end)})
            published = frame.filter(~pl.col(column).is_in(kept)) if kept else frame
            rows = self._rows_per_day(key, published, column, first, end, kept)
            staged = self._committable(context, audited, {d: n for d, n in rows.items() if d not in kept}, first, end)
            if staged is not None:
                # Commits the published days' files (when there are any) and deletes the others.
                version = lake.commit_staged(key, staged, frame.collect_schema(), column, first, end, kept, audited.commit_metadata)
            elif len(kept) < (end - first).days:
                version = lake.write_window(key, published, column, first, end, keep=kept, commit_metadata=audited.commit_metadata)
            else:
                version = lake.version(key)
            partitions = f"{first}..{end - dt.timedelta(days=1)}"
            extra = {day: dict(m) for day, m in audited.day_metadata.items()}
            if lineage is not None:
                # On the window's newest partition only: a year's backfill need not store it 365 times.
                extra.setdefault(end - dt.timedelta(days=1), {})[COLUMN_LINEAGE] = lineage
            self._partition_metadata(context, rows, set(failed), extra)
            written = sum(n for day, n in rows.items() if day not in kept)
            status = ("WITHHELD" if len(failed) == len(rows) else "PARTIAL") if failed else "SUCCESS"
        elif audited.failed:
            version, partitions, written, status = lake.version(key), "all", 0, "WITHHELD"
        else:
            version = lake.write_whole(key, frame)
            partitions, written, status = "all", frame.height, "SUCCESS"
            context.add_output_metadata({"dagster/row_count": frame.height})
            if lineage is not None:
                context.add_output_metadata({COLUMN_LINEAGE: lineage})
        context.add_output_metadata(
            {
                "delta_version": -1 if version is None else version,
                "table_uri": lake.display_uri(key),
                "partitions": partitions,
                "published": not (audited.failed or audited.failed_days),
            }
        )
        return AuditEntry(key, partitions, written, status)

    def _committable(
        self, context: dg.OutputContext, audited: Audited, published: Mapping[dt.date | None, int], first: dt.date, end: dt.date
    ) -> tuple[StagedFile, ...] | None:
        """The staged files to commit, or None to write the frame (the rows the checks passed):
        the files of the published days must hold exactly the frame's rows per day (`published`).
        A frame with rows outside the window is written, so that `write_window` refuses it."""
        if audited.staged is None:
            return None
        in_files: dict[dt.date, int] = {}
        for f in audited.staged:
            if f.day in published:
                in_files[f.day] = in_files.get(f.day, 0) + f.rows
        inside = all(d is not None and first <= d < end for d in published)
        if inside and in_files == {d: n for d, n in published.items() if n}:
            return audited.staged
        context.log.warning(f"{context.asset_key.to_user_string()}: the engine's files do not hold the frame's rows; the frame is written instead")
        discard_staged(self.lake.table_uri(context.asset_key), audited.staged)
        return None

    def _rows_per_day(
        self, key: dg.AssetKey, published: pl.DataFrame | pl.LazyFrame, column: str, first: dt.date, end: dt.date, kept: list[dt.date]
    ) -> dict[dt.date, int]:
        """Rows the table holds per day of the window after the write: the published frame's, and
        for the kept days what their previous version holds (read back, not assumed)."""
        counts = dict.fromkeys(days_in(first, end), 0)
        for day, n in published.lazy().group_by(column).len().collect().iter_rows():
            counts[day] = n
        if kept and self.lake.exists(key):
            previous = self.lake.scan(key).filter(pl.col(column).is_in(kept))
            for day, n in previous.group_by(column).len().collect().iter_rows():
                counts[day] = n
        return counts

    @staticmethod
    def _partition_metadata(
        context: dg.OutputContext, rows: dict[dt.date, int], kept: set[dt.date], extra: Mapping[dt.date, Mapping[str, object]]
    ) -> None:
        # Each daily partition's materialization reports its own rows, not the window's total.
        step = context.step_context
        for day, n in rows.items():
            metadata = {"dagster/row_count": n, "published": day not in kept, **extra.get(day, {})}
            step.add_asset_metadata(metadata, asset_key=context.asset_key, partition_key=day.isoformat())

    def load_input(self, context: dg.InputContext) -> pl.LazyFrame:
        key = context.asset_key
        column = (context.upstream_output.definition_metadata or {}).get(PARTITION_COLUMN)
        where = (column, *window_dates(context.asset_partitions_time_window)) if column and context.has_asset_partitions else ()
        shared = (context.definition_metadata or {}).get(SHARED_COLUMNS)
        if shared:
            return self.lake.read_shared(key, shared, *where)
        return self.lake.scan(key, *where)
