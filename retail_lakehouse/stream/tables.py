"""The stream's writes: micro-batch events into the ledger exactly once, and the one writer of
`gold/inventory_positions`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
import polars as pl

from retail_lakehouse.bronze.transforms import MalformedDrop, read_jsonl_drop
from retail_lakehouse.gold.positions import POS_EVENT_SCHEMA, positions
from retail_lakehouse.landing import POS_COLUMNS, LandingZone
from retail_lakehouse.storage import Lakehouse
from retail_lakehouse.stream.rules import app_id, batch_drop, clean_pos_events

LEDGER = dg.AssetKey(["gold", "pos_ledger"])
POSITIONS = dg.AssetKey(["gold", "inventory_positions"])
INVENTORY = dg.AssetKey(["silver", "inventory"])
PAIR = ("store_id", "product_id")


def _no_pairs() -> pl.DataFrame:
    return pl.DataFrame(schema={"store_id": pl.String, "product_id": pl.String})


@dataclass(frozen=True)
class Applied:
    """What merging one micro-batch did. `status`: merged, already applied, or rejected (the
    whole file could not be read; `reason` says why)."""

    batch: str
    status: str
    events: int = 0
    rejected_rows: int = 0
    positions_updated: int = 0
    reason: str | None = None
    touched: pl.DataFrame = field(default_factory=_no_pairs, repr=False)


def merge_into_ledger(lake: Lakehouse, events: pl.DataFrame, batch: str) -> str:
    """Insert the batch's events not in the ledger yet, in a commit that records the batch's
    application transaction; "already applied" when a commit of this batch exists."""
    if lake.transaction_version(LEDGER, app_id(batch)) is not None:
        return "already applied"
    if events.height or not lake.exists(LEDGER):
        lake.merge(LEDGER, events, on=("event_id",), update=False, app_id=app_id(batch))
    return "merged"


def recompute_positions(lake: Lakehouse, touched: pl.DataFrame | None = None) -> pl.DataFrame:
    """Positions from the latest snapshots and the ledger: of the `touched` pairs, or of every pair."""
    snapshots = lake.scan(INVENTORY)
    events = lake.scan(LEDGER) if lake.exists(LEDGER) else pl.LazyFrame(schema=POS_EVENT_SCHEMA)
    if touched is not None:
        snapshots = snapshots.join(touched.lazy(), on=PAIR, how="semi")
        events = events.join(touched.lazy(), on=PAIR, how="semi")
    return positions(snapshots.collect(), events.collect())


def write_positions(lake: Lakehouse, fresh: pl.DataFrame, whole: bool = False) -> int | None:
    """The one writer of `gold/inventory_positions`: `fresh` rows are MERGEd in by (store, product),
    or, with `whole`, replace the table (the daily recompute of every pair); returns the version."""
    if whole or not lake.exists(POSITIONS):
        return lake.write_whole(POSITIONS, fresh)
    if not fresh.height:
        return lake.version(POSITIONS)
    return lake.merge(POSITIONS, fresh, on=PAIR)


def apply_batch(lake: Lakehouse, landing: LandingZone, batch: str, log: Callable[[str], None] = lambda _: None) -> Applied:
    """Merge one micro-batch (`pos_events/<file>`) into the ledger and the positions, exactly once."""
    drop = batch_drop(batch)
    try:
        raw = read_jsonl_drop(landing.read(drop), POS_COLUMNS)
    except MalformedDrop as err:
        log(f"rejected POS batch {batch}: {err.reason}")
        return Applied(batch, "rejected", reason=err.reason)
    events, rejected = clean_pos_events(raw, batch)
    for row in rejected.iter_rows(named=True):
        log(f"rejected POS event in {batch} row {row['_row_number']}: {row['reject_reasons']}")
    status = merge_into_ledger(lake, events, batch)
    # Recomputed even when the batch was already applied: idempotent, and it repairs a run that
    # died between the ledger commit and this one.
    touched = events.select(*PAIR).unique()
    updated = 0
    if touched.height and lake.exists(INVENTORY):
        fresh = recompute_positions(lake, touched)
        write_positions(lake, fresh)
        updated = fresh.height
    return Applied(batch, status, events.height, rejected.height, updated, touched=touched)
