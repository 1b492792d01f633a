"""Every daily partition tells the truth inside a range run: gates, row counts and conservation are
per day, a failing day is withheld while the others publish, and first loads in any order end as
one clean run."""

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retail_lakehouse import catalog
from retail_lakehouse.orchestration import late_window
from retail_lakehouse.quality import policy as p
from retail_lakehouse_tests.conftest import START, make_lake

VOLATILE = {"load_timestamp", "_ingested_at"}
MEDALLION = ("bronze", "silver", "gold")


def _table(lake, name: str) -> pl.DataFrame:
    frame = lake.read(name)
    frame = frame.drop([c for c in frame.columns if c in VOLATILE])
    return frame.sort(frame.columns, nulls_last=True)


def _day(i: int) -> dt.date:
    return START + dt.timedelta(days=i)


@pytest.fixture(scope="module")
def month_landing(tmp_path_factory):
    """31 days of drops, a few hundred sales lines a day: the window of one 02:00 run."""
    from retail_lakehouse.generator import generate

    out = tmp_path_factory.mktemp("month")
    generate(out, START, 31, seed=11, scale=0.1)
    return out


def _sales_drop(landing, day: dt.date):
    [path] = sorted((landing / "sales_returns").glob(f"sales_returns_{day:%Y%m%d}_230000.csv"))
    return path


def test_one_bad_day_in_a_31_day_run_fails_that_day_and_the_other_days_publish(month_landing, tmp_path):
    import shutil

    landing = tmp_path / "landing"
    shutil.copytree(month_landing, landing)
    lake = make_lake(tmp_path, landing)
    first, last = _day(0), _day(30)
    assert lake.run(first, last).success
    before = {name: _table(lake, name) for name in ("silver/sales", "silver/sales_quarantine", "gold/fact_sales", "gold/agg_daily_sales")}

    # Day 14's drop is re-delivered with every line broken; day 20's is corrected (one price).
    bad, corrected = _day(14), _day(20)
    drop = pl.read_csv(_sales_drop(landing, bad), infer_schema=False)
    drop.with_columns(pl.lit("-1").alias("quantity")).write_csv(_sales_drop(landing, bad))
    fixed = pl.read_csv(_sales_drop(landing, corrected), infer_schema=False)
    # A line of that day that no later drop updates (returns carry the whole row, old price included).
    elsewhere = pl.concat([pl.read_csv(f, infer_schema=False) for f in (landing / "sales_returns").glob("*_230000.csv")
                           if f != _sales_drop(landing, corrected)]).select("order_id").unique()
    line = (
        fixed.filter(pl.col("order_ts").str.starts_with(corrected.isoformat()) & (pl.col("quantity") == "1"))
        .join(elsewhere, on="order_id", how="anti").row(0, named=True)
    )
    key = (pl.col("order_id") == line["order_id"]) & (pl.col("line_number") == int(line["line_number"]))
    fixed.with_columns(
        pl.when((pl.col("order_id") == line["order_id"]) & (pl.col("line_number") == line["line_number"]))
        .then(pl.lit("999.99")).otherwise(pl.col("unit_price")).alias("unit_price")
    ).write_csv(_sales_drop(landing, corrected))

    result = lake.run(first, last, raise_on_error=False)
    assert not result.success
    gates = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    gate = gates[("silver/sales", p.QUARANTINE_WITHIN_LIMIT)]
    assert not gate.passed and gate.metadata["failed_days"].value == bad.isoformat()
    assert bad.isoformat() in gate.description

    sales = lake.read("silver/sales")
    # The bad day keeps its previous good version, in silver and its quarantine ...
    for name, column in (("silver/sales", "order_date"), ("silver/sales_quarantine", "drop_date")):
        now = _table(lake, name).filter(pl.col(column) == bad)
        assert now.height > 0 and now.equals(before[name].filter(pl.col(column) == bad)), name
    # ... while the other 30 days were published: the corrected price is in silver.
    assert sales.filter(key)["unit_price"].cast(pl.String).to_list() == ["999.99"]
    # Gold is downstream of the failed gate: nothing of this run reached it.
    for name in ("gold/fact_sales", "gold/agg_daily_sales"):
        assert _table(lake, name).equals(before[name]), name
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "gold/fact_sales" not in materialized

    # Each partition's materialization says whether it was published and what the table holds.
    per_day = {m.partition: m.metadata for m in result.asset_materializations_for_node("silver_sales") if m.asset_key.path == ["silver", "sales"]}
    assert per_day[bad.isoformat()]["published"].value is False
    assert per_day[corrected.isoformat()]["published"].value is True
    for day, meta in per_day.items():
        assert meta["dagster/row_count"].value == sales.filter(pl.col("order_date") == dt.date.fromisoformat(day)).height, day

    # The drop is delivered again, corrected: the next run publishes it and reaches gold.
    drop.write_csv(_sales_drop(landing, bad))
    assert lake.run(first, last).success
    assert _table(lake, "silver/sales").filter(pl.col("order_date") == bad).equals(before["silver/sales"].filter(pl.col("order_date") == bad))
    assert lake.read("gold/fact_sales").filter(key)["unit_price"].cast(pl.String).to_list() == ["999.99"]


def test_every_partition_reports_its_own_rows_and_accounts_for_every_bronze_row(month_landing, tmp_path):
    lake = make_lake(tmp_path, month_landing)
    first, last = _day(0), _day(9)
    result = lake.run(first, last)
    assert result.success
    days = {(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
    partitioned = [t for t in catalog.tables(exclude=catalog.STREAM) if t.layer in MEDALLION and t.partition]
    assert len(partitioned) > 10
    for entry in partitioned:
        table = lake.read(entry.path)
        events = [m for m in result.get_asset_materialization_events() if tuple(m.asset_key.path) == entry.key]
        seen = {m.partition: m.materialization.metadata["dagster/row_count"].value for m in events}
        assert set(seen) == days, entry.path
        for day, rows in seen.items():
            assert rows == table.filter(pl.col(entry.partition) == dt.date.fromisoformat(day)).height, (entry.path, day)

    # Conservation recomputed from the tables: every bronze row of a drop date is in silver (by its
    # lineage), in the quarantine, or superseded by a later valid version of its key that silver holds.
    lineage = ["_source_file", "_row_number"]
    for source, table, keys in (("sales_returns", "sales", ["order_id", "line_number"]), ("payment_refund", "payment", ["payment_id"])):
        bronze = lake.read(f"bronze/{source}")
        silver, quarantine = lake.read(f"silver/{table}"), lake.read(f"silver/{table}_quarantine")
        in_silver = bronze.join(silver.select(lineage), on=lineage, how="semi")
        quarantined = bronze.join(quarantine.select(lineage), on=lineage, how="semi")
        rest = bronze.join(in_silver.select(lineage), on=lineage, how="anti").join(quarantined.select(lineage), on=lineage, how="anti")
        typed = rest.with_columns(pl.col("line_number").cast(pl.Int32)) if "line_number" in keys else rest
        later = typed.join(silver.select(*keys, pl.col("_source_file").alias("_winner")), on=keys, how="inner")
        assert later.height == rest.height, f"{rest.height - later.height} {source} rows are nowhere"
        meta = {m.partition: m.metadata for m in result.asset_materializations_for_node(f"silver_{table}") if m.asset_key.path == ["silver", table]}
        for day in sorted(days):
            d = dt.date.fromisoformat(day)
            counts = {
                "bronze_rows": bronze.filter(pl.col("drop_date") == d).height,
                "silver_rows": in_silver.filter(pl.col("drop_date") == d).height,
                "quarantined_rows": quarantined.filter(pl.col("drop_date") == d).height,
                "superseded_rows": later.filter(pl.col("drop_date") == d).height,
            }
            assert counts["bronze_rows"] > 0
            assert {k: meta[day][f"conservation/{k}"].value for k in counts} == counts, (table, day)


def test_shuffled_first_loads_end_as_one_clean_run(month_landing, tmp_path):
    """Days 3, 1, 5, 2, 4 loaded for the first time, each as a daily run does it: the day's drops
    into bronze, then silver and gold over the day's late-data window. Facts loaded before their
    customers arrived are re-keyed when the customers do."""
    import dagster as dg

    upper = dg.AssetSelection.groups("silver", "gold")
    last = _day(4)
    shuffled = make_lake(tmp_path / "shuffled", month_landing)
    outcomes = []
    for i in (2, 0, 4, 1, 3):
        day = _day(i)
        assert shuffled.run(day, selection=dg.AssetSelection.groups("bronze")).success
        first, end = late_window(day, START, 30)
        outcomes.append(shuffled.run(first, end, selection=upper, raise_on_error=False).success)
    clean = make_lake(tmp_path / "clean", month_landing)
    assert clean.run(START, last).success
    assert outcomes[-1], "the last load leaves nothing failing"
    for layer in ("silver", "gold"):
        for name in catalog.names(layer, exclude=catalog.STREAM):
            assert_frame_equal(_table(shuffled, f"{layer}/{name}"), _table(clean, f"{layer}/{name}"), check_row_order=True)
    facts = shuffled.read("gold/fact_sales")
    assert facts.filter(pl.col("order_date") == _day(2)).height > 0
