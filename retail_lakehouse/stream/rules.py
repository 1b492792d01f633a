"""The POS stream's rules, pure (no Dagster): which landing files are micro-batches, in what order
they were delivered, how batches' events are cleaned, which batches a sensor tick hands out, and how
they become runs sized by their data.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import NamedTuple

import polars as pl

from retail_lakehouse.gold.positions import POS_EVENT_SCHEMA
from retail_lakehouse.landing import Drop, Listed

POS_SOURCE = "pos_events"
# Batches of business dates at most this many days before the newest one (the watermark) are still
# "on time": every sensor tick lists them and notices a new or re-delivered one. Older ones are left
# to the daily reconciliation against the ledger (see `plan_tick`).
LATE_DAYS = 2
# How far back the daily reconciliation looks: a till or a store offline for weeks still lands in
# it, and it lists five weeks of names whatever the history. Older batches are taken only by a
# tick without a cursor (a new or reset sensor), which compares the whole folder with the ledger.
RECONCILE_DAYS = 35
# A run takes batches in delivery order until one of these is reached. A run costs Dagster ~2.5 s
# whatever it holds, so a backlog should be a few big runs; the byte cap bounds a run's memory (its
# events are parsed and merged together), the batch cap its run config (~250 kB of names) and its
# time (reading a small batch is ~0.5 ms: 5,000 of them made a run of ~3.5 s).
MAX_RUN_BYTES = 64 * 2**20
MAX_RUN_BATCHES = 5_000


def batch_drop(batch: str) -> Drop:
    """The drop a batch name (`pos_events/<file>`) stands for; ValueError if it is not a POS batch."""
    source, _, name = batch.partition("/")
    drop = Drop.from_name(source, name)
    if drop is None or source != POS_SOURCE:
        raise ValueError(f"{batch} is not a POS micro-batch name (pos_events/pos_events_YYYYMMDD_hhmmss_<seq>.jsonl)")
    return drop


def delivery_order(batch: str) -> tuple[dt.date, str]:
    """Sort key: business date, then stamp; names that are not batches sort last."""
    source, _, name = batch.partition("/")
    drop = Drop.from_name(source, name)
    return (drop.business_date, drop.stamp) if drop else (dt.date.max, name)


def clean_pos_events(raw: pl.DataFrame, batch: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse micro-batches' text columns; (valid events, rejected rows with `reject_reasons`).

    `raw` holds the rows of one batch, named by `batch`, or of several, named by a `batch` column.
    An event repeated within a batch is kept once (its first row); across batches it is kept in each,
    so that each batch's count says what it delivered.
    """
    if batch is not None:
        raw = raw.with_columns(pl.lit(batch, pl.String).alias("batch"))
    typed = raw.with_columns(
        pl.col("event_ts").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False).dt.replace_time_zone("UTC").alias("__ts"),
        pl.col("quantity").cast(pl.Int64, strict=False).alias("__qty"),
    )
    rules = {
        "required_event_id": pl.col("event_id").is_null(),
        "required_store_id": pl.col("store_id").is_null(),
        "required_product_id": pl.col("product_id").is_null(),
        "invalid_event_ts": pl.col("__ts").is_null(),
        "invalid_quantity": pl.col("__qty").is_null(),
    }
    reasons = pl.concat_list([pl.when(c).then(pl.lit(n)).otherwise(pl.lit(None, pl.String)) for n, c in rules.items()]).list.drop_nulls()
    typed = typed.with_columns(reasons.alias("reject_reasons"))
    rejected = typed.filter(pl.col("reject_reasons").list.len() > 0).drop("__ts", "__qty")
    valid = (
        typed.filter(pl.col("reject_reasons").list.len() == 0)
        .select("event_id", pl.col("__ts").alias("event_ts"), "store_id", "product_id", pl.col("__qty").alias("quantity"), "batch")
        .unique(["batch", "event_id"], keep="first", maintain_order=True)
    )
    return valid.cast(POS_EVENT_SCHEMA), rejected


class Pending(NamedTuple):
    """A batch to hand to a run: its name (`pos_events/<file>`), fingerprint and size in bytes."""

    batch: str
    fingerprint: str
    size: int


def batches_of(files: Iterable[Listed]) -> list[Pending]:
    """The POS micro-batches among listed files, in delivery order (other names are no batches)."""
    drops = ((Drop.from_name(POS_SOURCE, f.name), f) for f in files)
    found = sorted((drop, Pending(f"{POS_SOURCE}/{f.name}", f.fingerprint, f.size)) for drop, f in drops if drop is not None)
    return [p for _, p in found]


def plan_runs(pending: Sequence[Pending], max_bytes: int = MAX_RUN_BYTES, max_batches: int = MAX_RUN_BATCHES) -> list[tuple[str, list[str]]]:
    """(run key, batches) of runs over `pending`, in order: each takes batches until the
    next would pass `max_bytes` or `max_batches` (a batch bigger than `max_bytes` gets a run of its
    own). The key names the batches and their fingerprints, so a tick that requests the same work
    again is deduplicated by Dagster. `pending` is in delivery order (as `plan_tick` and
    `batches_of` return it)."""
    chunks: list[list[Pending]] = []
    size = 0
    for p in pending:
        if not chunks or len(chunks[-1]) >= max_batches or size + p.size > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(p)
        size += p.size
    runs = []
    for chunk in chunks:
        digest = hashlib.sha256(json.dumps([(p.batch, p.fingerprint) for p in chunk]).encode()).hexdigest()[:16]
        runs.append((f"pos-{digest}", [p.batch for p in chunk]))
    return runs


@dataclass(frozen=True)
class StreamCursor:
    """What the `pos_stream` sensor remembers between ticks, bounded whatever the history:

    - `watermark`: the newest business date of a batch seen so far (never past tomorrow, UTC, so a
      misnamed file from the future cannot move the window away from today's batches);
    - `seen`: fingerprint of every batch of the late window (business dates from
      `watermark - LATE_DAYS`), the only dates a regular tick lists;
    - `reconciled_on`: the UTC day of the last reconciliation with the ledger (see `listing_for`).

    What was merged before the window is recorded by the ledger itself (its `batch` column).
    """

    watermark: dt.date | None = None
    seen: Mapping[str, str] = field(default_factory=dict)
    reconciled_on: dt.date | None = None

    def window_start(self, late_days: int = LATE_DAYS) -> dt.date | None:
        return None if self.watermark is None else self.watermark - dt.timedelta(days=late_days)

    def to_json(self) -> str:
        # `seen` by day, names without their common parts: a day of 5-minute batches is ~12 kB.
        days: dict[str, dict[str, str]] = {}
        for batch, fingerprint in sorted(self.seen.items()):
            day, _, rest = batch.removeprefix(_NAME_START).partition("_")
            days.setdefault(day, {})[rest] = fingerprint
        state = {"watermark": _iso(self.watermark), "reconciled_on": _iso(self.reconciled_on), "seen": days}
        return json.dumps(state, separators=(",", ":"))

    @classmethod
    def from_json(cls, cursor: str | None) -> "StreamCursor":
        if not cursor:
            return cls()
        state = json.loads(cursor)
        if "seen" not in state:
            # The cursor of the first design: every batch ever seen. Kept as `seen` for one tick, which
            # reconciles (no `reconciled_on`) and keeps only the late window.
            dates = [d for d in (_business_date(b) for b in state) if d is not None]
            return cls(max(dates, default=None), state)
        seen = {f"{_NAME_START}{day}_{rest}": fp for day, names in state["seen"].items() for rest, fp in names.items()}
        return cls(_date(state["watermark"]), seen, _date(state["reconciled_on"]))


_NAME_START = f"{POS_SOURCE}/{POS_SOURCE}_"


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def listing_for(cursor: StreamCursor, today: dt.date, late_days: int = LATE_DAYS, reconcile_days: int = RECONCILE_DAYS) -> tuple[dt.date | None, bool]:
    """What a tick lists: (first business date, None for the whole folder; whether it reconciles
    with the ledger). The whole folder on a first tick, the reconciliation horizon on the first
    tick of a UTC day, the late window otherwise; always through tomorrow."""
    if cursor.watermark is None or cursor.reconciled_on is None:
        return None, True
    if cursor.reconciled_on != today:
        return cursor.watermark - dt.timedelta(days=reconcile_days), True
    return cursor.window_start(late_days), False


def _business_date(batch: str) -> dt.date | None:
    source, _, name = batch.partition("/")
    drop = Drop.from_name(source, name)
    return drop.business_date if drop else None


def newest_date(names: Sequence[str], latest: dt.date) -> dt.date | None:
    """The newest business date, at most `latest`, among batch file names sorted by name."""
    # Names sort by date (`pos_events_YYYYMMDD_...`): parse from the newest down, not all of them.
    for name in reversed(names):
        drop = Drop.from_name(POS_SOURCE, name)
        if drop is not None and drop.business_date <= latest:
            return drop.business_date
    return None


@dataclass(frozen=True)
class Tick:
    """What one sensor tick decided: the batches to request, the cursor to keep, and for the log the
    batches the reconciliation found outside the late window and the names that are no batches."""

    pending: list[Pending]
    cursor: StreamCursor
    outside_window: list[str] = field(default_factory=list)
    not_batches: list[str] = field(default_factory=list)


def plan_tick(cursor: StreamCursor, files: Sequence[Listed], today: dt.date, merged: Set[str] | None = None, late_days: int = LATE_DAYS) -> Tick:
    """The batches one sensor tick hands out, in delivery order, and the cursor after it.

    `files` is the listing `listing_for` asks for, sorted by name; on a reconciling tick `merged` is
    the batches of those dates the ledger holds. A batch is handed out when
    - it is in the late window and new or re-delivered (its fingerprint differs from `seen`): the
      stream, every tick, whether or not an earlier run merged it;
    - or, reconciling, it is outside the window, not in `seen`, not in the ledger and not empty: a
      batch that landed after its date left the window, or whose run failed. Batches that add
      nothing to the ledger (all rows invalid or already merged, unreadable) come back at every
      reconciliation with the same run key, which Dagster skips.
    """
    tomorrow = today + dt.timedelta(days=1)
    newest = newest_date([f.name for f in files], tomorrow)
    watermark = max((d for d in (cursor.watermark, newest) if d is not None), default=None)
    if watermark is None:
        return Tick([], StreamCursor(None, {}, today if merged is not None else cursor.reconciled_on))
    # Window bounds as names: batch names compare like their business dates, so most names are
    # classified without being parsed.
    low = f"{POS_SOURCE}_{watermark - dt.timedelta(days=late_days):%Y%m%d}"
    high = f"{POS_SOURCE}_{tomorrow + dt.timedelta(days=1):%Y%m%d}"
    pending, seen, strays = [], {}, []
    for f in files:
        if f.name.startswith("."):
            continue  # an upload in progress or the file system's, never a delivery (as in `survey`)
        batch = f"{POS_SOURCE}/{f.name}"
        in_window = low <= f.name < high
        if in_window:
            wanted = cursor.seen.get(batch) != f.fingerprint and (batch in cursor.seen or merged is None or batch not in merged)
        else:
            wanted = merged is not None and batch not in merged and batch not in cursor.seen and f.size > 0
        if not (in_window or wanted):
            continue
        drop = Drop.from_name(POS_SOURCE, f.name)
        if drop is None:
            if merged is not None:  # reported once a day, not every 30 s
                strays.append(f.name)
            continue
        if in_window:
            seen[batch] = f.fingerprint
        if wanted:
            pending.append((drop, in_window, Pending(batch, f.fingerprint, f.size)))
    pending.sort()  # by Drop: the delivery order
    reconciled_on = today if merged is not None else cursor.reconciled_on
    outside = [p.batch for _, in_window, p in pending if not in_window]
    return Tick([p for _, _, p in pending], StreamCursor(watermark, seen, reconciled_on), outside, sorted(strays))
