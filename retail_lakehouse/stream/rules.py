"""The POS stream's rules, pure (no Dagster): which landing files are micro-batches, in what order
they were delivered, how a batch's events are cleaned, and how new batches become bounded runs.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Mapping

import polars as pl

from retail_lakehouse.gold.positions import POS_EVENT_SCHEMA
from retail_lakehouse.landing import Drop

POS_SOURCE = "pos_events"
# A sensor tick hands each run at most this many micro-batches, so a backlog becomes several short
# runs instead of one long one.
MAX_BATCHES_PER_RUN = 8


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


def app_id(batch: str) -> str:
    """The Delta application transaction that marks a batch as merged into the ledger."""
    return f"retail_lakehouse:pos:{batch}"


def clean_pos_events(raw: pl.DataFrame, batch: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse one micro-batch's text columns; (valid events, rejected rows with `reject_reasons`)."""
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
        .select("event_id", pl.col("__ts").alias("event_ts"), "store_id", "product_id", pl.col("__qty").alias("quantity"), pl.lit(batch).alias("batch"))
        .unique("event_id", keep="first", maintain_order=True)
    )
    return valid.cast(POS_EVENT_SCHEMA), rejected


def new_batches(seen: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """Batches not seen yet, or seen with another fingerprint (re-delivered), in delivery order.

    `seen` is every (batch, fingerprint) ever handed out, not a high-water mark, so a late or
    out-of-order batch is still picked up.
    """
    return sorted((b for b, fp in current.items() if seen.get(b) != fp), key=delivery_order)


def plan_runs(batches: list[str], fingerprints: Mapping[str, str], max_batches: int = MAX_BATCHES_PER_RUN) -> list[tuple[str, list[str]]]:
    """(run key, batches) for runs of at most `max_batches`; the key names the batches and their
    fingerprints, so a tick that requests the same work again is deduplicated by Dagster."""
    runs = []
    for i in range(0, len(batches), max_batches):
        chunk = batches[i : i + max_batches]
        digest = hashlib.sha256(json.dumps([(b, fingerprints[b]) for b in chunk]).encode()).hexdigest()[:16]
        runs.append((f"pos-{digest}", chunk))
    return runs
