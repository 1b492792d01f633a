"""Inventory positions and POS windows (seed 004 §1 "Real-time inventory monitoring"). Pure Polars.

A snapshot is the stock at the close of its snapshot_date, so a position is the latest snapshot
minus the POS quantities of events on later dates (positive = sold, negative = returned at the
till). Each POS event_id counts once: the ledger of applied events is keyed by it.
"""

import datetime as dt

import polars as pl

TIMESTAMP = pl.Datetime("us", "UTC")
POS_EVENT_SCHEMA = {
    "event_id": pl.String,
    "event_ts": TIMESTAMP,
    "store_id": pl.String,
    "product_id": pl.String,
    "quantity": pl.Int64,
    "batch": pl.String,
}
POSITION_SCHEMA = {
    "store_id": pl.String,
    "product_id": pl.String,
    "snapshot_date": pl.Date,
    "snapshot_quantity": pl.Int64,
    "pos_quantity_since": pl.Int64,
    "quantity_on_hand": pl.Int64,
    "reorder_point": pl.Int64,
    "last_updated": TIMESTAMP,
    "is_below_reorder_point": pl.Boolean,
}
WINDOW_SCHEMA = {
    "window_start": TIMESTAMP,
    "window_end": TIMESTAMP,
    "store_id": pl.String,
    "product_id": pl.String,
    "units_sold": pl.Int64,
    "units_returned": pl.Int64,
    "net_units": pl.Int64,
}


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


def latest_snapshots(inventory: pl.DataFrame) -> pl.DataFrame:
    """The newest snapshot of each (store_id, product_id) from silver/inventory rows."""
    return inventory.sort("snapshot_date").group_by("store_id", "product_id", maintain_order=True).last()


def positions(snapshots: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """One row per (store, product) with a snapshot: the latest snapshot minus later POS events."""
    latest = latest_snapshots(snapshots).select("store_id", "product_id", "snapshot_date", "quantity_on_hand", "reorder_point")
    later = (
        events.unique("event_id", keep="first")
        .join(latest.select("store_id", "product_id", "snapshot_date"), on=["store_id", "product_id"])
        .filter(pl.col("event_ts").dt.date() > pl.col("snapshot_date"))
        .group_by("store_id", "product_id")
        .agg(pl.col("quantity").sum().alias("pos_quantity_since"), pl.col("event_ts").max().alias("last_event_ts"))
    )
    close_of_day = (pl.col("snapshot_date") + pl.duration(days=1)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    out = latest.join(later, on=["store_id", "product_id"], how="left").with_columns(
        pl.col("quantity_on_hand").alias("snapshot_quantity"),
        pl.col("pos_quantity_since").fill_null(0),
    )
    out = out.with_columns(
        (pl.col("snapshot_quantity") - pl.col("pos_quantity_since")).alias("quantity_on_hand"),
        pl.max_horizontal(close_of_day, pl.col("last_event_ts")).alias("last_updated"),
    ).with_columns((pl.col("quantity_on_hand") < pl.col("reorder_point")).alias("is_below_reorder_point"))
    return out.select(list(POSITION_SCHEMA)).cast(POSITION_SCHEMA).sort("store_id", "product_id")


def sales_windows_5min(events: pl.DataFrame) -> pl.DataFrame:
    """Units per store, product and 5-minute tumbling window (seed 004 §1 `window(..., "5 minutes")`)."""
    start = pl.col("event_ts").dt.truncate("5m")
    return (
        events.unique("event_id", keep="first")
        .group_by(start.alias("window_start"), "store_id", "product_id")
        .agg(
            pl.col("quantity").clip(lower_bound=0).sum().alias("units_sold"),
            (-pl.col("quantity").clip(upper_bound=0)).sum().alias("units_returned"),
            pl.col("quantity").sum().alias("net_units"),
        )
        .with_columns((pl.col("window_start") + dt.timedelta(minutes=5)).alias("window_end"))
        .select(list(WINDOW_SCHEMA))
        .cast(WINDOW_SCHEMA)
        .sort("window_start", "store_id", "product_id")
    )
