"""`generate`: build every source for the window, then write the landing zone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from retail_lakehouse.generator._util import epoch_day, stream
from retail_lakehouse.generator.dims import Calendar, build_customers, build_products, build_stores
from retail_lakehouse.generator.reference import CSV_SOURCES, REGULAR_STAMP
from retail_lakehouse.generator.sales import build_orders, loyalty_rows, payment_rows, sales_rows
from retail_lakehouse.generator.stock import build_stock
from retail_lakehouse.generator.writer import write_csv_source, write_malformed, write_pos


@dataclass(frozen=True)
class Signals:
    """The planted patterns, by id: what market basket, elasticity and churn analysis should recover."""

    bundles: tuple[tuple[str, str], ...]  # product pairs bought together far above chance
    elasticity: dict[str, float]  # price-test product -> its price elasticity of demand
    churned: dict[str, dt.date]  # customer -> the first day they no longer buy


def _ids(to_id, idx) -> list[str]:
    return pl.select(to_id(pl.lit(pl.Series(idx, dtype=pl.Int64)))).to_series().to_list()


@dataclass(frozen=True)
class GenerationSummary:
    """What `generate` wrote. Paths are relative to `out`, with "/" separators."""

    out: Path
    start: dt.date
    days: int
    seed: int
    scale: float
    rows: dict[str, int]  # data rows per source over its regular drops (pos_events: events)
    files: tuple[str, ...]  # every file written, sorted
    malformed: dict[str, str]  # malformed extra drop -> kind (one of MALFORMED_KINDS)
    dirty: dict[str, dict[str, int]] = field(default_factory=dict)  # rows that got each defect
    signals: Signals | None = None  # what the analytics should find (see the package docstring)

    def line(self) -> str:
        end = self.start + dt.timedelta(days=self.days - 1)
        counts = ", ".join(f"{s} {n:,}" for s, n in self.rows.items())
        return (
            f"wrote {len(self.files):,} files ({len(self.malformed)} malformed) for {self.start}..{end} "
            f"(seed {self.seed}, scale {self.scale:g}) to {self.out}: {counts}"
        )


def generate(out: Path, start: dt.date, days: int, seed: int = 42, scale: float = 1.0) -> GenerationSummary:
    """Write the landing zone for business dates start .. start + days - 1 (SPEC §2).

    The same arguments always produce byte-identical files. Files already in `out` under other
    names are left alone; files with the same names are overwritten.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    out = Path(out)
    cal = Calendar(epoch_day(start), days)

    stores = build_stores(seed, cal, scale)
    customers = build_customers(seed, cal, scale)
    products = build_products(seed, cal, scale)
    orders, lines = build_orders(seed, cal, scale, customers, products, stores)
    sales, sales_dirty = sales_rows(seed, cal, orders, lines, customers, products, stores)
    payments, payment_dirty = payment_rows(seed, cal, orders, lines, customers)
    loyalty, loyalty_dirty = loyalty_rows(seed, cal, orders, customers)
    inventory, inventory_dirty, pos = build_stock(seed, cal, scale, stores, products)

    regular = pl.lit(REGULAR_STAMP).alias("_stamp")
    frames = {
        "customer": customers.rows.with_columns(regular),
        "product": products.rows.with_columns(regular),
        "store": stores.rows.with_columns(regular),
        "sales_returns": sales,
        "payment_refund": payments,
        "inventory": inventory,
        "loyalty": loyalty,
    }
    files: list[str] = []
    for source in CSV_SOURCES:
        files += write_csv_source(out, source, frames[source], start, days, daily=source != "store")
    files += write_pos(out, pos, start, days)
    malformed = write_malformed(out, stream(seed, "malformed"), frames, start, days)
    files += malformed

    rows = {s: frames[s].height for s in CSV_SOURCES}
    rows["pos_events"] = pos.height
    dirty = {
        "customer": customers.dirty_counts,
        "product": products.dirty_counts,
        "sales_returns": sales_dirty,
        "payment_refund": payment_dirty,
        "inventory": inventory_dirty,
        "loyalty": loyalty_dirty,
    }
    churners = (customers.churn_day < days).nonzero()[0]
    signals = Signals(
        bundles=tuple(zip(_ids(products.ids, lines.bundles[:, 0]), _ids(products.ids, lines.bundles[:, 1]))),
        elasticity=dict(zip(_ids(products.ids, products.price_tests), products.elasticity.tolist())),
        churned={c: start + dt.timedelta(days=int(d)) for c, d in zip(_ids(customers.ids, churners), customers.churn_day[churners])},
    )
    return GenerationSummary(out, start, days, seed, scale, rows, tuple(sorted(files)), malformed, dirty, signals)
