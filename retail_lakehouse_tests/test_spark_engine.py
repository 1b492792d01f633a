"""The Spark engine against the Polars one: the same lakehouse, row for row and to the cent.

Spark is real: `local[2]` in this process, and a Spark Connect server started by the test. Polars
is the referee, and it is itself pinned by the independent referees of the other tests.
"""

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable

from retail_lakehouse.definitions import build_defs
from retail_lakehouse.engine import PolarsEngine, Source
from retail_lakehouse.settings import Settings
from retail_lakehouse.spark import SparkEngine, build_spark_engine
from retail_lakehouse.partitions import days_in
from retail_lakehouse.storage import LocalLakehouse
from retail_lakehouse_tests.compare import assert_same_lakehouse, run_as_users_do
from retail_lakehouse_tests.conftest import START, TEST_TOKEN_KEY, make_lake
from retail_lakehouse_tests.spark_connect import spark_connect_server

pytestmark = pytest.mark.spark

def test_spark_local_builds_the_same_lakehouse_as_polars(generated_landing, tmp_path):
    polars_lake = make_lake(tmp_path / "polars", generated_landing)
    spark_lake = make_lake(tmp_path / "spark", generated_landing, engine="spark")
    outcomes = [run_as_users_do(lake, 40) for lake in (polars_lake, spark_lake)]
    assert outcomes[0] == outcomes[1]
    # Once every drop is in, the daily run passes its gates.
    assert outcomes[0][-1]
    rows = assert_same_lakehouse(polars_lake.settings.lake_root, spark_lake.settings.lake_root)
    # The comparison is over what makes the engines differ: dirty rows, late returns, rejected files.
    for key in [("silver", "sales_quarantine"), ("silver", "payment_quarantine"), ("bronze", "rejected_files"), ("gold", "fact_sales")]:
        assert rows[key] > 0, key
    returns = pl.read_delta(str(spark_lake.settings.lake_root / "silver" / "sales")).filter(pl.col("is_returned"))
    assert returns.filter(pl.col("return_date") > pl.col("order_date")).height > 0
    # The daily gold tables hold the files Spark's workers wrote (`part-<id>.parquet`), committed
    # as they were; delta-rs names its own `part-<n>-<id>-c000...`.
    for name in ("fact_sales", "fact_payment", "agg_daily_sales", "sales_performance"):
        files = DeltaTable(str(spark_lake.settings.lake_root / "gold" / name)).file_uris()
        assert files and all(re.search(r"/part-[0-9a-f]{32}\.parquet$", f) for f in files), (name, files[:3])


def test_the_readme_backfill_on_a_spark_connect_server_builds_the_same_lakehouse(generated_landing, tmp_path):
    days = 8
    last = START + dt.timedelta(days=days - 1)
    polars_lake = make_lake(tmp_path / "polars", generated_landing)
    assert polars_lake.run(START, last).success
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with spark_connect_server(tmp_path / "spark-connect.log") as url:
        # The user's path, in its own process: one Python process cannot hold a local and a remote session.
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "RETAIL_LAKEHOUSE_ENGINE": "spark",
            "RETAIL_LAKEHOUSE_SPARK_REMOTE": url,
            "RETAIL_LAKEHOUSE_LANDING_ROOT": str(generated_landing),
            "RETAIL_LAKEHOUSE_LAKE_ROOT": str(tmp_path / "remote" / "lakehouse"),
            "RETAIL_LAKEHOUSE_START_DATE": START.isoformat(),
            "RETAIL_LAKEHOUSE_TOKEN_KEY": TEST_TOKEN_KEY,
        }
        command = [
            str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "retail_lakehouse.definitions",
            "--select", "group:bronze or group:silver or group:gold", "--partition-range", f"{START}...{last}",
        ]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert_same_lakehouse(polars_lake.settings.lake_root, tmp_path / "remote" / "lakehouse")
    # The remote path was taken: the server's own Python workers ran the groups.
    assert "Starting Python task execution" in (tmp_path / "spark-connect.log").read_text()


def test_spark_reads_a_polars_written_table_after_an_overwrite_and_a_delete(tmp_path):
    lake = LocalLakehouse(root=str(tmp_path / "lakehouse"))
    key = dg.AssetKey(["gold", "t"])
    days = [START + dt.timedelta(days=i) for i in range(4)]
    frame = pl.DataFrame({"day": [d for d in days for _ in range(3)], "n": list(range(12)), "amount": [f"{i}.25" for i in range(12)]})
    frame = frame.with_columns(pl.col("amount").cast(pl.Decimal(18, 2)))
    lake.write_window(key, frame, "day", days[0], days[-1] + dt.timedelta(days=1))
    # A partition overwrite and a delete: both leave removed files in the folder.
    lake.write_days(key, pl.DataFrame({"day": [days[1]], "n": [100], "amount": ["9.99"]}).with_columns(pl.col("amount").cast(pl.Decimal(18, 2))), "day", [days[1]])
    DeltaTable(lake.table_uri(key)).delete("n = 7")
    assert len(list(Path(lake.table_uri(key)).rglob("*.parquet"))) > len(lake.file_uris(key))

    engine = build_spark_engine()
    window = Source(key, "day", days[1], days[3])
    seen = pl.from_arrow(engine.read(lake, window).toArrow())
    want = lake.scan(key, "day", days[1], days[3]).collect()
    assert sorted(seen.select(want.columns).rows()) == sorted(want.rows())
    assert sorted(seen["n"].to_list()) == [6, 8, 100]
    # And the other way round: what a Spark rule returns is committed by delta-rs and read by Polars.
    out = engine.map_groups(lake, Source(key), ("day",), lambda f: {"t": f.with_columns(pl.col("amount") * 2)})["t"]
    lake.write_whole(dg.AssetKey(["gold", "t2"]), out)
    doubled = pl.read_delta(lake.table_uri(dg.AssetKey(["gold", "t2"])))
    assert doubled["amount"].sum() == 2 * lake.read(key)["amount"].sum()


def test_the_workers_write_each_groups_results_to_the_staging_folder_and_the_driver_reads_them(tmp_path, monkeypatch):
    lake = LocalLakehouse(root=str(tmp_path / "lakehouse"))
    key = dg.AssetKey(["silver", "t"])
    days = [START + dt.timedelta(days=i) for i in range(5)]
    frame = pl.DataFrame({
        "day": [d for d in days for _ in range(40)],
        "order_id": [f" O{i % 17} " for i in range(200)],
        "amount": [f"{i}.{i % 100:02d}" for i in range(200)],
        "at": [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=7 * i) for i in range(200)],
        "note": [None if i % 3 else f"n{i}" for i in range(200)],
    }).with_columns(pl.col("amount").cast(pl.Decimal(18, 2)))
    lake.write_window(key, frame, "day", days[0], days[-1] + dt.timedelta(days=1))

    def rule(group: pl.DataFrame) -> dict[str, pl.DataFrame]:
        # Keys are trimmed by the grouping: every version of " O3 " and "O3" in one group.
        per_order = group.group_by(pl.col("order_id").str.strip_chars()).agg(pl.len(), pl.col("amount").sum(), pl.col("at").max())
        return {"orders": per_order, "rows": group.with_columns(doubled=pl.col("amount") * 2)}

    staging = tmp_path / "staging"
    seen: list[list[str]] = []
    remove = shutil.rmtree

    def listed_then_removed(path, *args, **kwargs):
        # shutil is shared: Spark removes folders of its own too.
        if Path(path).parent == staging:
            seen.append(sorted(os.listdir(path)))
        remove(path, *args, **kwargs)

    monkeypatch.setattr("retail_lakehouse.spark.shutil.rmtree", listed_then_removed)
    engine = SparkEngine(spark=build_spark_engine().spark, staging=str(staging), groups=4)
    source = Source(key, "day", days[0], days[-1] + dt.timedelta(days=1))
    spark_out = engine.map_groups(lake, source, ("order_id",), rule)
    polars_out = PolarsEngine().map_groups(lake, source, ("order_id",), rule)
    for name in ("orders", "rows"):
        assert spark_out[name].schema == polars_out[name].schema
        assert sorted(spark_out[name].rows()) == sorted(polars_out[name].rows())
    assert spark_out["orders"].height == 17
    # The results were Parquet files in the staging folder, a file per group and output, and are gone.
    assert len(seen) == 1 and seen[0] and all(n.endswith(".parquet") for n in seen[0])
    assert {n.split("-")[0] for n in seen[0]} == {"orders", "rows"}
    assert list(staging.iterdir()) == []


def test_a_table_the_workers_wrote_is_read_by_polars_and_spark_after_an_overwrite_and_a_delete(tmp_path):
    lake = LocalLakehouse(root=str(tmp_path / "lakehouse"))
    source_key, key = dg.AssetKey(["silver", "lines"]), dg.AssetKey(["gold", "per_order"])
    days = [START + dt.timedelta(days=i) for i in range(6)]

    def lines(bump: int) -> pl.DataFrame:
        return pl.DataFrame({
            "day": [d for d in days for _ in range(30)],
            "order_id": [f"O{i % 7}" for i in range(180)],
            "amount": [f"{i + bump}.10" for i in range(180)],
        }).with_columns(pl.col("amount").cast(pl.Decimal(18, 2)))

    def rule(group: pl.DataFrame) -> dict[str, pl.DataFrame]:
        return {"orders": group.group_by("day", "order_id").agg(pl.col("amount").sum(), pl.len().alias("lines"))}

    engine = build_spark_engine()
    end = days[-1] + dt.timedelta(days=1)

    def load(first: dt.date, last: dt.date, keep=()) -> pl.DataFrame:
        source = Source(source_key, "day", first, last + dt.timedelta(days=1))
        out = engine.map_groups(lake, source, ("day", "order_id"), rule, tables={"orders": (key, "day")})
        # The workers wrote the table's files themselves, a file per day (groups are whole days).
        files = out.staged["orders"]
        assert sorted(f.day for f in files) == days_in(first, last + dt.timedelta(days=1))
        assert sum(f.rows for f in files) == out["orders"].height
        lake.commit_staged(key, files, out["orders"].schema, "day", first, last + dt.timedelta(days=1), keep)
        return out["orders"]

    lake.write_window(source_key, lines(0), "day", days[0], end)
    first_load = load(days[0], days[-1])
    referee = PolarsEngine().map_groups(lake, Source(source_key, "day", days[0], end), ("day", "order_id"), rule)["orders"]
    assert sorted(pl.read_delta(lake.table_uri(key)).select(referee.columns).rows()) == sorted(referee.rows())
    assert sorted(first_load.rows()) == sorted(referee.rows())

    # A partition overwrite of days 1..3 from changed input, day 2 kept at its previous version.
    lake.write_window(source_key, lines(1000), "day", days[0], end)
    load(days[1], days[3], keep=[days[2]])
    # And a delete, which rewrites a file without some of its rows.
    DeltaTable(lake.table_uri(key)).delete(f"order_id = 'O3' AND day = '{days[4].isoformat()}'")
    new = PolarsEngine().map_groups(lake, Source(source_key, "day", days[0], end), ("day", "order_id"), rule)["orders"]
    want = pl.concat([
        referee.filter(~pl.col("day").is_in([days[1], days[3]])),
        new.filter(pl.col("day").is_in([days[1], days[3]])),
    ]).filter(~((pl.col("order_id") == "O3") & (pl.col("day") == days[4])))
    by_polars = pl.read_delta(lake.table_uri(key)).select(want.columns)
    by_spark = pl.from_arrow(engine.read(lake, Source(key)).toArrow()).select(want.columns).cast(dict(want.schema))
    assert sorted(by_polars.rows()) == sorted(want.rows()) == sorted(by_spark.rows())
    assert by_polars.filter(pl.col("day") == days[1])["amount"].sum() != referee.filter(pl.col("day") == days[1])["amount"].sum()
    # The files of the kept day were deleted, not left beside the table.
    assert len(list(Path(lake.table_uri(key), f"day={days[2].isoformat()}").glob("*.parquet"))) == 1


def test_the_engine_is_in_kinds_and_no_jvm_starts_before_a_rule_runs():
    polars_graph = build_defs(Settings()).resolve_asset_graph()
    assert "polars" in polars_graph.get(dg.AssetKey(["gold", "fact_sales"])).kinds
    code = (
        "import sys; from retail_lakehouse.definitions import build_defs; from retail_lakehouse.settings import Settings; "
        "build_defs(Settings()); polars = 'retail_lakehouse.spark' in sys.modules; "
        "defs = build_defs(Settings(engine='spark')); defs.resolve_asset_graph(); "
        "from pyspark import SparkContext; print(polars, SparkContext._active_spark_context is not None)"
    )
    # A fresh process: this one may already hold the session of another test.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    graph = build_defs(Settings(engine="spark")).resolve_asset_graph()
    for path in (["silver", "sales"], ["gold", "fact_sales"], ["gold", "agg_daily_sales"]):
        assert "spark" in graph.get(dg.AssetKey(path)).kinds
