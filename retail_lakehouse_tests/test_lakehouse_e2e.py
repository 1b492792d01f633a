"""Bronze → silver → gold through Dagster on generated drops, checked against independent referees."""

import datetime as dt
import random
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retail_lakehouse import catalog
from retail_lakehouse_tests.conftest import START, make_lake
from retail_lakehouse_tests.referee import expected_daily_sales

DAYS = 40
LAST = START + dt.timedelta(days=DAYS - 1)
# Every gold table the daily run writes (the stream-fed ones have their own tests).
GOLD = catalog.names("gold", exclude=catalog.STREAM)
SILVER = catalog.names("silver", catalog.CLEAN)
# Written at load time by design; everything else must be identical between runs.
VOLATILE = {"load_timestamp", "_ingested_at"}


def _table(lake, name: str) -> pl.DataFrame:
    frame = lake.read(name)
    frame = frame.drop([c for c in frame.columns if c in VOLATILE])
    return frame.sort(frame.columns, nulls_last=True)


@pytest.fixture(scope="module")
def clean_lake(generated_landing, tmp_path_factory):
    lake = make_lake(tmp_path_factory.mktemp("clean"), generated_landing)
    result = lake.run(START, LAST)
    assert result.success
    return lake


def test_every_silver_and_gold_table_is_materialized_for_every_partition(clean_lake):
    lineage = ["_source_file", "_row_number"]
    for name in SILVER:
        assert clean_lake.read(f"silver/{name}").height > 0, name
        quarantine = clean_lake.read(f"silver/{name}_quarantine")
        bronze = clean_lake.read(f"bronze/{catalog.table('silver', name).cleaned_from}")
        # Every quarantined row names the rules it broke and is a real bronze row.
        assert quarantine.filter(pl.col("reject_reasons").list.len() == 0).height == 0, name
        assert quarantine.join(bronze, on=lineage, how="anti").height == 0, name
    # The generator dirties these on purpose, so their quarantines cannot be empty.
    for name in ("customer", "sales", "payment"):
        assert clean_lake.read(f"silver/{name}_quarantine").height > 0, name
    for name in GOLD:
        assert clean_lake.read(f"gold/{name}").height > 0, name
    days = {START + dt.timedelta(days=i) for i in range(DAYS)}
    assert set(clean_lake.read("gold/fact_sales")["order_date"].unique()) == days
    assert set(clean_lake.read("gold/agg_daily_sales")["sales_date"].unique()) == days


def test_daily_sales_equal_an_independent_duckdb_referee_to_the_cent(clean_lake, generated_landing):
    from retail_lakehouse.generator import generate  # noqa: F401  (the landing's own malformed list)

    malformed = set(_malformed(generated_landing))
    expected = {(r[0], r[1]): r[2:] for r in expected_daily_sales(generated_landing, malformed, LAST)}
    agg = clean_lake.read("gold/agg_daily_sales")
    facts = clean_lake.read("gold/fact_sales")
    fact_totals = facts.group_by("order_date", "sales_channel").agg(
        pl.col("sales_total").sum(), pl.col("quantity").sum(), pl.col("order_id").n_unique(), pl.len(), pl.col("is_returned").sum()
    )
    got_agg = {
        (r["sales_date"], r["sales_channel"]): (r["total_revenue"], r["total_quantity"], r["total_orders"], r["total_lines"], r["return_count"])
        for r in agg.iter_rows(named=True)
    }
    got_facts = {(r[0], r[1]): tuple(r[2:]) for r in fact_totals.iter_rows()}
    assert len(expected) >= DAYS * 2
    assert got_agg.keys() == expected.keys()
    for key, (revenue, quantity, orders, lines, returns) in expected.items():
        assert got_agg[key] == (Decimal(revenue), quantity, orders, lines, returns), key
        assert got_facts[key] == (Decimal(revenue), quantity, orders, lines, returns), key


def test_the_benchs_lower_bound_builds_every_silver_and_gold_table_as_the_pipeline_does(clean_lake, generated_landing, tmp_path):
    """`make bench` rates the backfill against (d), the same transforms without Dagster or Delta:
    (d) must do the pipeline's work, every table of it, or the ratio flatters the pipeline. Only
    the POS ledger is left out: the streaming job fills it, a backfill does not."""
    from bench.lower_bound import run
    from retail_lakehouse_tests.conftest import TEST_TOKEN_KEY

    run(generated_landing, tmp_path, START, LAST, TEST_TOKEN_KEY.encode())
    gold = [name for name in catalog.names("gold") if name != "pos_ledger"]
    for layer, names in (("silver", catalog.names("silver")), ("gold", gold)):
        for name in names:
            path = tmp_path / layer / f"{name}.parquet"
            assert path.exists(), f"the lower bound does not build {layer}/{name}"
            lower = pl.read_parquet(path)
            lower = lower.drop([c for c in lower.columns if c in VOLATILE])
            lower = lower.sort(lower.columns, nulls_last=True)
            assert_frame_equal(lower, _table(clean_lake, f"{layer}/{name}"), check_row_order=True, check_column_order=False)


def _malformed(landing) -> list[str]:
    # The generator's summary is reproducible from its arguments; the conftest made this landing.
    from retail_lakehouse.generator import generate
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        return list(generate(Path(tmp), START, DAYS, seed=7, scale=0.02).malformed)


def test_rerunning_partitions_in_any_order_leaves_every_table_as_one_clean_run(clean_lake, generated_landing, tmp_path):
    lake = make_lake(tmp_path, generated_landing)
    assert lake.run(START, LAST).success
    rng = random.Random(5)
    days = [START + dt.timedelta(days=i) for i in range(DAYS)]
    for day in rng.sample(days, 4) + rng.sample(days, 2):
        assert lake.run(day).success
    assert lake.run(days[10], days[25]).success
    assert lake.run(days[5], days[8]).success
    for layer, names in (("silver", SILVER + [f"{n}_quarantine" for n in SILVER]), ("gold", GOLD)):
        for name in names:
            assert_frame_equal(_table(lake, f"{layer}/{name}"), _table(clean_lake, f"{layer}/{name}"), check_row_order=True)


def test_daily_scheduled_runs_build_the_same_tables_as_one_backfill(generated_landing, tmp_path):
    """Run day after day as the 02:00 schedule does (each day with its 30-day late window)."""
    from retail_lakehouse.orchestration import late_window

    last = START + dt.timedelta(days=11)
    daily = make_lake(tmp_path / "daily", generated_landing)
    for i in range(12):
        first, end = late_window(START + dt.timedelta(days=i), START, 30)
        assert daily.run(first, end).success
    backfill = make_lake(tmp_path / "backfill", generated_landing)
    assert backfill.run(START, last).success
    for name in ["fact_sales", "fact_payment", "agg_daily_sales", "dim_customer", "dim_product"]:
        assert_frame_equal(_table(daily, f"gold/{name}"), _table(backfill, f"gold/{name}"))


def test_a_return_delivered_ten_days_later_updates_the_original_fact_and_daily_aggregate(generated_landing, tmp_path):
    bronze = pl.concat(
        [pl.read_csv(p, infer_schema=False) for p in sorted((generated_landing / "sales_returns").glob("*_230000.csv"))]
    )
    returns = bronze.filter(
        (pl.col("is_returned") == "1")
        & (pl.col("return_date").str.to_date(strict=False) - pl.col("order_ts").str.slice(0, 10).str.to_date(strict=False) == pl.duration(days=10))
    )
    line = returns.row(0, named=True)
    order_date = dt.date.fromisoformat(line["order_ts"][:10])
    return_day = order_date + dt.timedelta(days=10)
    key = (pl.col("order_id") == line["order_id"]) & (pl.col("line_number") == int(line["line_number"]))

    lake = make_lake(tmp_path, generated_landing)
    assert lake.run(START, return_day - dt.timedelta(days=1)).success
    before = lake.read("gold/fact_sales").filter(key).row(0, named=True)
    agg_before = lake.read("gold/agg_daily_sales").filter(pl.col("sales_date") == order_date)
    assert before["is_returned"] is False and before["return_date"] is None

    # The return's day, as the schedule runs it: that day and its 30-day late window.
    assert lake.run(max(START, return_day - dt.timedelta(days=30)), return_day).success
    after = lake.read("gold/fact_sales").filter(key).row(0, named=True)
    assert after["is_returned"] is True
    assert after["return_date"] == return_day
    assert after["return_amount"] == Decimal(line["return_amount"])
    assert after["sales_id"] == before["sales_id"]
    # Every line of that order date returned in the return day's drops now counts, this one included.
    returned_that_day = bronze.filter(
        (pl.col("is_returned") == "1")
        & (pl.col("return_date") == return_day.isoformat())
        & (pl.col("order_ts").str.slice(0, 10) == order_date.isoformat())
    ).select("order_id", "line_number").unique()
    assert returned_that_day.height >= 1
    agg_after = lake.read("gold/agg_daily_sales").filter(pl.col("sales_date") == order_date)
    assert agg_after["return_count"].sum() == agg_before["return_count"].sum() + returned_that_day.height


def test_scd2_segment_change_gives_a_second_version_and_facts_point_at_the_right_one(clean_lake):
    dim = clean_lake.read("gold/dim_customer")
    changed = (
        dim.filter(pl.col("customer_key") != -1)
        .group_by("customer_id")
        .agg(pl.len().alias("versions"), pl.col("customer_segment").n_unique().alias("segments"))
        .filter((pl.col("versions") > 1) & (pl.col("segments") > 1))
    )
    assert changed.height > 0
    versions = dim.join(changed.select("customer_id"), on="customer_id")
    assert versions.group_by("customer_id").agg(pl.col("is_current").sum())["is_current"].to_list() == [1] * changed.height
    facts = (
        clean_lake.read("gold/fact_sales")
        .join(clean_lake.read("silver/sales").select("order_id", "line_number", "order_ts"), on=["order_id", "line_number"])
        .join(changed.select("customer_id"), on="customer_id")
    )
    # A naive lookup, row by row: the version whose [valid_from, valid_to) holds the order time.
    for row in facts.iter_rows(named=True):
        mine = versions.filter(pl.col("customer_id") == row["customer_id"]).sort("valid_from")
        holding = mine.filter(
            (pl.col("valid_from") <= row["order_ts"]) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > row["order_ts"]))
        )
        expected = holding["customer_key"][0] if holding.height else mine["customer_key"][0]
        assert row["customer_key"] == expected, row
    # Some customer bought both before and after the change: facts point at two versions.
    keys_per_customer = facts.group_by("customer_id").agg(pl.col("customer_key").n_unique())
    assert keys_per_customer["customer_key"].max() >= 2
