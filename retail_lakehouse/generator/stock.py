"""Store stock: POS micro-batch events and the daily inventory snapshots that agree with them.

Each store tracks a fixed assortment chosen when it opens. A snapshot is the stock at the close of
its date: previous close - net POS quantity of the day, topped up to the order-up-to level by a
same-day delivery whenever it falls below the reorder point.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from retail_lakehouse.generator import dirty
from retail_lakehouse.generator._util import (
    DAY_SECONDS,
    compact_date,
    date_text,
    prefix_choice,
    stream,
    timestamp,
    weighted,
    width_for,
)
from retail_lakehouse.generator.dims import Calendar, Products, Stores
from retail_lakehouse.generator.reference import DIRTY_RATES, REGULAR_STAMP

EVENTS_PER_PAIR_DAY = 0.35
BATCH_SHARES = (0.08, 0.30, 0.35, 0.27)
SOLD_QUANTITY_WEIGHTS = (0.70, 0.20, 0.10)  # 1..3 units
TILL_RETURN_RATE = 0.03


def build_stock(seed: int, cal: Calendar, scale: float, stores: Stores, products: Products):
    """(inventory rows, inventory defect counts, POS events frame with `_day` and `_batch`)."""
    rng = stream(seed, "stock")
    per_store = max(5, round(20 * scale))
    open_day = np.zeros(stores.count, dtype=np.int64)
    for d in range(1, cal.days):
        open_day[stores.active[d - 1] : stores.active[d]] = d
    weights = np.diff(np.concatenate([[0.0], products.cum_weight]))
    pair_store, pair_prod = [], []
    for s in range(stores.count):
        available = int(products.available[open_day[s]])
        k = min(per_store, available)
        p = weights[:available] / weights[:available].sum()
        pair_prod.append(np.sort(rng.choice(available, k, replace=False, p=p)))
        pair_store.append(np.full(k, s, dtype=np.int64))
    store = np.concatenate(pair_store)
    prod = np.concatenate(pair_prod)
    n_pairs = store.size
    # Stores are indexed by opening day, so the pairs tracked on a day are a prefix.
    active = np.searchsorted(store, stores.active, side="left")
    reorder = rng.integers(5, 21, n_pairs)
    up_to = np.rint(reorder * rng.uniform(2.0, 4.0, n_pairs)).astype(np.int64)
    stock = rng.integers(reorder, up_to + 1)
    demand = np.cumsum(weights[prod])

    # POS events: per day and batch, each event on a tracked pair weighted by product popularity.
    lam = active * EVENTS_PER_PAIR_DAY
    counts = np.maximum(1, rng.poisson(np.outer(lam, BATCH_SHARES)))  # days x batches
    ev_day = np.repeat(np.repeat(cal.day_index, 4), counts.ravel())
    ev_batch = np.repeat(np.tile(np.arange(4), cal.days), counts.ravel())
    n = ev_day.size
    ev_pair = prefix_choice(rng, demand, active[ev_day])
    qty = 1 + weighted(rng, 3, SOLD_QUANTITY_WEIGHTS, n)
    qty = np.where(rng.random(n) < TILL_RETURN_RATE, -rng.integers(1, 3, n), qty)
    window = DAY_SECONDS // 4
    ev_ts = cal.day_start(ev_day) + ev_batch * window + rng.integers(0, window, n)
    order = np.lexsort((ev_pair, ev_ts))
    ev_day, ev_batch, ev_pair, qty, ev_ts = (a[order] for a in (ev_day, ev_batch, ev_pair, qty, ev_ts))
    seq = np.arange(n) - np.concatenate([[0], np.cumsum(counts.sum(axis=1))[:-1]])[ev_day] + 1
    # Date and number stay under 13 digits, so an event id never looks like a card number to a scanner.
    width = width_for(int(counts.sum(axis=1).max(initial=0)), 4)
    pos = pl.DataFrame(
        {"_day": ev_day, "_batch": ev_batch, "_epoch_day": ev_day + cal.start_day, "_seq": seq,
         "_ts": ev_ts, "_store": store[ev_pair], "_prod": prod[ev_pair], "quantity": qty}
    ).select(
        pl.concat_str(
            pl.lit("POS"), compact_date(pl.col("_epoch_day")), pl.col("_seq").cast(pl.String).str.zfill(width),
            separator="-",
        ).alias("event_id"),
        timestamp(pl.col("_ts")).alias("event_ts"),
        stores.ids(pl.col("_store")).alias("store_id"),
        products.ids(pl.col("_prod")).alias("product_id"),
        pl.col("quantity"),
        pl.col("_day"),
        pl.col("_batch"),
    )

    net = np.zeros((cal.days, n_pairs), dtype=np.int64)
    np.add.at(net, (ev_day, ev_pair), qty)
    snap_day, snap_pair, snap_qty = [], [], []
    for d in range(cal.days):
        stock = stock - net[d]
        low = stock < reorder
        stock = np.where(low, up_to, stock)
        k = int(active[d])
        snap_day.append(np.full(k, d, dtype=np.int64))
        snap_pair.append(np.arange(k))
        snap_qty.append(stock[:k].copy())
    snap_day_a = np.concatenate(snap_day)
    snap_pair_a = np.concatenate(snap_pair)
    frame = pl.DataFrame(
        {
            "_day": snap_day_a,
            "_epoch_day": snap_day_a + cal.start_day,
            "_store": store[snap_pair_a],
            "_prod": prod[snap_pair_a],
            "_qty": np.concatenate(snap_qty),
            "_reorder": reorder[snap_pair_a],
        }
    ).with_columns(
        date_text(pl.col("_epoch_day")).alias("snapshot_date"),
        stores.ids(pl.col("_store")).alias("store_id"),
        products.ids(pl.col("_prod")).alias("product_id"),
        pl.col("_qty").cast(pl.String).alias("quantity_on_hand"),
        pl.col("_reorder").cast(pl.String).alias("reorder_point"),
        pl.lit(REGULAR_STAMP).alias("_stamp"),
    )
    rows, counts = dirty.inventory(frame, stream(seed, "dirty.inventory"), DIRTY_RATES["inventory"], ("_day", "_stamp"))
    return rows, counts, pos

