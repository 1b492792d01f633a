"""Inventory positions and POS windows (seed 004 §1 "Real-time inventory monitoring"). Pure Polars.

A snapshot is the stock at the close of its snapshot_date, so a position is the latest snapshot
minus the POS quantities of events on later dates (positive = sold, negative = returned at the
till). Each POS event_id counts once: the ledger of applied events is keyed by it.
"""

import datetime as dt

import polars as pl

from retail_lakehouse.catalog import schema

POS_EVENT_SCHEMA = schema("gold", "pos_ledger")
POSITION_SCHEMA = schema("gold", "inventory_positions")
WINDOW_SCHEMA = schema("gold", "pos_sales_5min")


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
