"""Benchmark: the whole Dagster pipeline against plain Polars over the same drops, in one command.

    .venv/bin/python scripts/benchmark.py --days 365 --scale 1

1. baseline: the same pure transforms called directly (read every CSV drop, bronze parse, silver
   rules, gold star schema), no Dagster, no Delta;
2. pipeline: one single-run backfill of every medallion asset over the whole range (ephemeral
   instance, in-process executor), writing Delta tables;
3. daily: the 02:00 run of the last day (that day plus its 30-day late-data window).
Figures are reported as ratios to the baseline measured in the same command, because the machines
are shared and noisy. Peak memory is the process's maximum resident set size.
"""

import argparse
import datetime as dt
import resource
import tempfile
import time
from pathlib import Path

import polars as pl


def baseline(landing: Path, first: dt.date, last: dt.date) -> float:
    from retail_lakehouse.bronze.transforms import read_csv_drop, tokenize_cards, with_lineage
    from retail_lakehouse.gold import star
    from retail_lakehouse.silver import rules
    from retail_lakehouse.sources import SOURCE_COLUMNS

    started = time.perf_counter()
    now = dt.datetime.now(dt.timezone.utc)
    bronze = {}
    for source, columns in SOURCE_COLUMNS.items():
        frames = []
        for path in sorted((landing / source).glob("*.csv")):
            try:
                frame = read_csv_drop(path.read_bytes(), columns)
            except ValueError:
                continue
            if source == "payment_refund":
                frame = tokenize_cards(frame, b"benchmark")
            day = dt.datetime.strptime(path.name.split("_")[-2], "%Y%m%d").date()
            frames.append(with_lineage(frame, f"{source}/{path.name}", day, now))
        bronze[source] = pl.concat(frames)
    customers = rules.clean_customers(bronze["customer"])
    products = rules.clean_products(bronze["product"])
    stores = rules.clean_stores(bronze["store"])
    sales = rules.clean_sales(bronze["sales_returns"])
    payments = rules.clean_payments(bronze["payment_refund"])
    rules.clean_inventory(bronze["inventory"])
    rules.clean_loyalty(bronze["loyalty"])
    dim_c = star.build_dim_customer(customers.history)
    dim_p = star.build_dim_product(products.history)
    star.build_dim_store(stores.clean)
    facts = star.build_fact_sales(sales.clean, dim_c, dim_p, now)
    star.build_fact_payment(payments.clean, now)
    star.build_agg_daily_sales(facts)
    star.build_sales_performance(facts)
    star.build_customer_lifetime_value(facts, dim_c)
    star.build_product_return_analysis(facts, dim_p)
    return time.perf_counter() - started


def pipeline(landing: Path, root: Path, first: dt.date, last: dt.date) -> tuple[float, float]:
    from retail_lakehouse.definitions import build_defs
    from retail_lakehouse.orchestration import late_window, run_range
    from retail_lakehouse.settings import Settings

    key = root / "key"
    key.write_text("benchmark")
    settings = Settings(landing_root=landing, lake_root=root / "lake", start_date=first, token_key_file=key)
    defs = build_defs(settings)
    started = time.perf_counter()
    assert run_range(defs, first, last).success
    full = time.perf_counter() - started
    started = time.perf_counter()
    assert run_range(defs, *late_window(last, first, settings.late_data_days)).success
    return full, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--start", default="2025-06-01")
    args = parser.parse_args()
    import logging

    logging.getLogger("dagster").setLevel(logging.WARNING)
    from retail_lakehouse.generator import generate

    first = dt.date.fromisoformat(args.start)
    last = first + dt.timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        summary = generate(root / "landing", first, args.days, seed=42, scale=args.scale)
        gen = time.perf_counter() - started
        base = baseline(root / "landing", first, last)
        full, daily = pipeline(root / "landing", root, first, last)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"drops: {args.days} days at scale {args.scale}: {summary.rows['sales_returns']:,} sales lines (generated in {gen:.1f} s)")
    print(f"baseline (plain Polars, same transforms): {base:.1f} s")
    print(f"pipeline (one Dagster run, Delta writes):  {full:.1f} s = {full / base:.2f} x baseline")
    print(f"daily run (last day + 30-day window):      {daily:.1f} s")
    print(f"peak resident memory of the process:       {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
