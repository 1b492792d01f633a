"""(d) The lower bound for our engine: the project's own transforms, no Dagster, no Delta, one process.

    .venv/bin/python -m bench.lower_bound --landing DIR --out DIR --first 2025-06-01 --last 2026-05-31

The same work as a year-long backfill of every bronze, silver and gold asset, called directly:
every drop parsed by `retail_lakehouse.bronze.transforms` (malformed files rejected, card numbers
tokenized), cleaned by `retail_lakehouse.silver.rules.clean_*` (with the 30-day late window and the
first partition, as the silver assets call them), the star schema, reports, customer 360 and
inventory positions built by the gold builders, seed 004's analytics (market basket, forecast,
elasticity, churn) with their default settings, and every table written as one Parquet file under
`<out>/<layer>/<table>.parquet`. Not done here, unlike the pipeline: asset checks (pandera
contracts, conservation, quarantine shares, reconciliation), Delta commits, Dagster events.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from bench.common import LATE_DATA_DAYS, list_drops


def _pos_drops(landing: Path, first: dt.date, last: dt.date) -> list[tuple[dt.date, Path]]:
    out = []
    for path in sorted((landing / "pos_events").glob("pos_events_*.jsonl")):
        try:
            day = dt.datetime.strptime(path.name.split("_")[2], "%Y%m%d").date()
        except (IndexError, ValueError):
            continue
        if first <= day <= last:
            out.append((day, path))
    return out


def _call(fn, *args, **optional):
    """Call a project function with the optional keyword arguments its signature accepts (the
    transforms' signatures move while the project evolves)."""
    params = inspect.signature(fn).parameters
    return fn(*args, **{k: v for k, v in optional.items() if k in params})


def run(landing: Path, out: Path, first: dt.date, last: dt.date, key: bytes) -> dict[str, int]:
    from retail_lakehouse.bronze import transforms
    from retail_lakehouse.bronze.transforms import MalformedDrop, bronze_table, tokenize_cards
    from retail_lakehouse.gold import basket, churn, forecast, pricing, star
    from retail_lakehouse.gold.customer360 import build_customer_360
    from retail_lakehouse.gold.positions import POS_EVENT_SCHEMA, positions, sales_windows_5min
    from retail_lakehouse.silver import rules
    from retail_lakehouse.sources import POS_COLUMNS, SOURCE_COLUMNS

    now = dt.datetime.now(dt.timezone.utc)
    written: dict[str, int] = {}
    # Older snapshots of the project parsed one drop at a time, and masked and numbered each file
    # as it was parsed, where bronze_table now does it for all of them (parse_*_drop).
    parse_threads = getattr(transforms, "PARSE_THREADS", 1)
    read_csv_drop = getattr(transforms, "parse_csv_drop", transforms.read_csv_drop)
    read_jsonl_drop = getattr(transforms, "parse_jsonl_drop", transforms.read_jsonl_drop)

    def write(layer: str, table: str, frame: pl.DataFrame) -> None:
        folder = out / layer
        folder.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(folder / f"{table}.parquet")
        written[f"{layer}/{table}"] = frame.height

    # Bronze: every drop of every source, a malformed file rejected whole.
    bronze: dict[str, pl.DataFrame] = {}
    rejected = []
    # As the bronze assets do: the drops parsed on PARSE_THREADS threads, the cards tokenized once.
    def parsed(drop, columns):
        try:
            return read_csv_drop(drop.path.read_bytes(), columns), None
        except MalformedDrop as e:
            return None, e.reason

    for source, columns in SOURCE_COLUMNS.items():
        frames = []
        drops = list_drops(landing, source, first, last)
        with ThreadPoolExecutor(parse_threads) as pool:
            results = list(pool.map(parsed, drops, [columns] * len(drops)))
        for drop, (frame, reason) in zip(drops, results):
            if reason is not None:
                rejected.append((source, drop.source_file, reason, now, drop.drop_date))
                continue
            frames.append((frame, drop.source_file, drop.drop_date))
        table = bronze_table(frames, columns, now)
        if "card_number" in table.columns:
            table = tokenize_cards(table, key)
        bronze[source] = table
        write("bronze", source, bronze[source])
    pos_frames = []
    for day, path in _pos_drops(landing, first, last):
        try:
            frame = read_jsonl_drop(path.read_bytes(), POS_COLUMNS)
        except MalformedDrop as e:
            rejected.append(("pos_events", f"pos_events/{path.name}", e.reason, now, day))
            continue
        pos_frames.append((frame, f"pos_events/{path.name}", day))
    write("bronze", "pos_events", bronze_table(pos_frames, POS_COLUMNS, now))
    write("bronze", "rejected_files", pl.DataFrame(
        rejected, orient="row",
        schema={"source": pl.String, "_source_file": pl.String, "reason": pl.String,
                "_ingested_at": pl.Datetime("us", "UTC"), "drop_date": pl.Date},
    ))

    # Silver: the rules as the silver assets call them.
    cleaned = {
        "customer": rules.clean_customers(bronze["customer"]),
        "product": rules.clean_products(bronze["product"]),
        "store": rules.clean_stores(bronze["store"]),
        "sales": _call(rules.clean_sales, bronze["sales_returns"], late_days=LATE_DATA_DAYS, first_day=first),
        "payment": _call(rules.clean_payments, bronze["payment_refund"], late_days=LATE_DATA_DAYS, first_day=first),
        "inventory": rules.clean_inventory(bronze["inventory"]),
        "loyalty": rules.clean_loyalty(bronze["loyalty"]),
    }
    for table, c in cleaned.items():
        write("silver", table, c.clean)
        write("silver", f"{table}_quarantine", c.quarantine)
        if c.history is not None:
            write("silver", f"{table}_history", c.history)

    # Gold.
    dim_customer = star.build_dim_customer(cleaned["customer"].history)
    dim_product = star.build_dim_product(cleaned["product"].history)
    write("gold", "dim_customer", dim_customer)
    write("gold", "dim_product", dim_product)
    write("gold", "dim_store", star.build_dim_store(cleaned["store"].clean))
    write("gold", "dim_date", star.build_dim_date(first, first.replace(year=first.year + 3) - dt.timedelta(days=1)))
    facts = star.build_fact_sales(cleaned["sales"].clean, dim_customer, dim_product, now)
    write("gold", "fact_sales", facts)
    write("gold", "fact_payment", star.build_fact_payment(cleaned["payment"].clean, now))
    write("gold", "agg_daily_sales", star.build_agg_daily_sales(facts))
    write("gold", "sales_performance", star.build_sales_performance(facts))
    write("gold", "customer_lifetime_value", star.build_customer_lifetime_value(facts, dim_customer))
    write("gold", "product_return_analysis", star.build_product_return_analysis(facts, dim_product))
    write("gold", "customer_360", build_customer_360(dim_customer, facts, dim_product, cleaned["loyalty"].clean))
    # Seed 004's analytics with their default settings, each reading its columns as its asset does.
    def reads(columns: dict[str, tuple[str, ...]]) -> dict[str, pl.DataFrame]:
        tables = {"fact_sales": facts, "dim_product": dim_product, "dim_customer": dim_customer}
        return {name: tables[name].select(cols) for name, cols in columns.items()}

    itemsets = basket.frequent_itemsets(basket.baskets(**reads(basket.BASKET_READS)))
    write("gold", "frequent_itemsets", itemsets)
    write("gold", "association_rules", basket.association_rules(itemsets))
    write("gold", "demand_forecast", forecast.build_demand_forecast(**reads(forecast.FORECAST_READS)).table)
    write("gold", "price_elasticity", pricing.build_price_elasticity(**reads(pricing.PRICING_READS)))
    write("gold", "customer_churn_risk", churn.build_customer_churn_risk(**reads(churn.CHURN_READS)))
    churn.evaluate(**reads(churn.CHURN_READS))  # the held-out evaluation the asset reports
    # The POS ledger is filled by the streaming job, which a backfill does not run: empty, as in (a).
    no_events = pl.DataFrame(schema=POS_EVENT_SCHEMA)
    write("gold", "inventory_positions", positions(cleaned["inventory"].clean, no_events))
    write("gold", "pos_sales_5min", sales_windows_5min(no_events))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lower_bound", description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--first", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--last", type=dt.date.fromisoformat, required=True)
    args = parser.parse_args(argv)
    key = os.environ.get("RETAIL_LAKEHOUSE_TOKEN_KEY", "bench-token-key").encode()
    started = time.perf_counter()
    written = run(args.landing, args.out, args.first, args.last, key)
    print(f"lower bound: {len(written)} tables, {written['silver/sales']:,} silver sales rows in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
