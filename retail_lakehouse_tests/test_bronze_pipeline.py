"""Bronze through Dagster on generated drops: windows, re-runs, backfills, rejected files, PCI."""

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
from polars.testing import assert_frame_equal

from retail_lakehouse import catalog
from retail_lakehouse.orchestration import MEDALLION
from retail_lakehouse_tests.conftest import START, make_lake

BRONZE = dg.AssetSelection.groups("bronze")
BRONZE_TABLES = catalog.names("bronze")


def _bronze_tables(lake) -> dict[str, pl.DataFrame]:
    # Ingestion time is the one column allowed to differ between runs.
    return {
        t: lake.read(f"bronze/{t}").drop("_ingested_at").sort("_source_file", *(["_row_number"] if t != "rejected_files" else []))
        for t in BRONZE_TABLES
    }


def test_rerunning_a_partition_or_a_range_twice_leaves_the_rows_of_one_run(generated_landing, tmp_path):
    lake = make_lake(tmp_path, generated_landing)
    day = START + dt.timedelta(days=3)
    lake.run(START, START + dt.timedelta(days=9), selection=BRONZE)
    once = _bronze_tables(lake)
    lake.run(day, selection=BRONZE)
    lake.run(day, selection=BRONZE)
    lake.run(START + dt.timedelta(days=2), START + dt.timedelta(days=6), selection=BRONZE)
    lake.run(START + dt.timedelta(days=2), START + dt.timedelta(days=6), selection=BRONZE)
    again = _bronze_tables(lake)
    for table in BRONZE_TABLES:
        assert_frame_equal(once[table], again[table])
    sales = once["sales_returns"]
    assert sales.height > 0
    assert sales.group_by("_source_file", "_row_number").len()["len"].max() == 1


def test_single_run_backfill_of_thirty_days_equals_thirty_daily_runs(generated_landing, tmp_path):
    last = START + dt.timedelta(days=29)
    backfill = make_lake(tmp_path / "a", generated_landing)
    result = backfill.run(START, last, selection=BRONZE)
    # One run materialized all thirty partitions of each bronze asset.
    assert len(result.asset_materializations_for_node("bronze__customer")) == 30
    daily = make_lake(tmp_path / "b", generated_landing)
    for i in range(30):
        daily.run(START + dt.timedelta(days=i), selection=BRONZE)
    a, b = _bronze_tables(backfill), _bronze_tables(daily)
    for table in BRONZE_TABLES:
        assert_frame_equal(a[table], b[table])
    assert a["sales_returns"]["drop_date"].n_unique() == 30


@pytest.mark.parametrize(
    "cli",
    [
        ["dg", "launch", "--assets", "group:bronze"],
        ["dagster", "asset", "materialize", "-m", "retail_lakehouse.definitions", "--select", "group:bronze"],
    ],
    ids=["dg-launch", "dagster-asset-materialize"],
)
def test_cli_partition_range_backfill_is_one_run_and_matches_the_python_run(generated_landing, tmp_path, monkeypatch, cli):
    """The README's backfill command (`dg launch`, and the older CLI it also documents), run as a user would."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "RETAIL_LAKEHOUSE_LANDING_ROOT": str(generated_landing),
        "RETAIL_LAKEHOUSE_LAKE_ROOT": str(tmp_path / "cli" / "lakehouse"),
        "RETAIL_LAKEHOUSE_START_DATE": START.isoformat(),
        "RETAIL_LAKEHOUSE_TOKEN_KEY": "test-key-not-secret",
    }
    (tmp_path / "home").mkdir()
    # The project's instance settings, as `make demo` and `make ui` install them (batching event log).
    shutil.copy(Path(__file__).parents[1] / "dagster.yaml", tmp_path / "home" / "dagster.yaml")
    cmd = [os.path.join(os.path.dirname(sys.executable), cli[0]), *cli[1:], "--partition-range", "2026-09-01...2026-09-05"]
    # `dg` finds the project by its pyproject.toml ([tool.dg]) from the working directory.
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(set(re.findall(r"RUN_SUCCESS", proc.stderr + proc.stdout))) == 1
    cli = pl.read_delta(str(tmp_path / "cli" / "lakehouse" / "bronze" / "customer"))
    days = [START + dt.timedelta(days=i) for i in range(5)]
    assert sorted(cli["drop_date"].unique().to_list()) == days
    # What the UI reads back from that instance: every partition materialized, each with its own rows.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with dg.DagsterInstance.get() as instance:
        key = dg.AssetKey(["bronze", "customer"])
        assert instance.get_materialized_partitions(key) == {d.isoformat() for d in days}
        events = instance.fetch_materializations(key, limit=10).records
        rows = {e.partition_key: e.asset_materialization.metadata["dagster/row_count"].value for e in events}
        assert rows == {d.isoformat(): cli.filter(pl.col("drop_date") == d).height for d in days}


def test_malformed_files_are_rejected_with_their_reason_and_the_rest_loads(tmp_path):
    from retail_lakehouse.generator import MALFORMED_KINDS, generate

    landing = tmp_path / "landing"
    summary = generate(landing, START, 40, seed=11, scale=0.01)
    assert set(summary.malformed.values()) == set(MALFORMED_KINDS)
    lake = make_lake(tmp_path, landing)
    result = lake.run(START, START + dt.timedelta(days=39), selection=BRONZE)
    rejected = lake.read("bronze/rejected_files")
    assert dict(zip(rejected["_source_file"], rejected["reason"])).keys() == summary.malformed.keys()
    # Each day's materialization names its own rejected files, and only those.
    named = set()
    for m in (e.materialization for e in result.get_asset_materialization_events()):
        source = m.asset_key.path[1]
        if source == "rejected_files":
            continue
        day = dt.date.fromisoformat(m.partition)
        mine = [p for p in summary.malformed if p.startswith(f"{source}/") and f"_{day:%Y%m%d}_" in p]
        assert m.metadata["files_rejected"].value == len(mine), (source, day)
        if mine:
            assert all(p in m.metadata["rejections"].value for p in mine)
            named.update(mine)
        else:
            assert "rejections" not in m.metadata
    assert named == summary.malformed.keys()
    expected_prefix = {"wrong_header": "wrong header", "wrong_delimiter": "wrong delimiter", "not_utf8": "not UTF-8", "truncated": "truncated"}
    for path, reason in zip(rejected["_source_file"], rejected["reason"]):
        assert reason.startswith(expected_prefix[summary.malformed[path]]), (path, reason)
    for path in summary.malformed:
        source = path.split("/")[0]
        table = lake.read(f"bronze/{source}")
        assert path not in table["_source_file"].to_list()
        # The regular drop of the same day still loaded.
        day = dt.datetime.strptime(path.split("_")[-2], "%Y%m%d").date()
        assert table.filter(pl.col("drop_date") == day).height > 0


def test_a_missing_daily_drop_fails_its_partition_naming_source_date_and_folder(landing_copy, tmp_path):
    day = START + dt.timedelta(days=2)
    for f in (landing_copy / "loyalty").glob(f"loyalty_{day:%Y%m%d}_*.csv"):
        f.unlink()
    lake = make_lake(tmp_path, landing_copy)
    result = lake.run(START, START + dt.timedelta(days=4), selection=BRONZE, raise_on_error=False)
    assert not result.success
    [gate] = [e for e in result.get_asset_check_evaluations() if e.asset_key.path == ["bronze", "loyalty"]]
    assert not gate.passed and gate.metadata["failed_days"].value == day.isoformat()
    assert f"{day}: no drop: expected loyalty_YYYYMMDD_hhmmss.csv" in gate.description
    assert str(landing_copy.absolute() / "loyalty") in gate.description
    # The other four days of the source loaded; stores arrive only when they change and did not fail.
    assert len(set(lake.read("bronze/loyalty")["drop_date"].unique())) == 4
    assert lake.read("bronze/store").height > 0


def test_no_card_number_reaches_any_table(generated_landing, tmp_path):
    lake = make_lake(tmp_path, generated_landing)
    lake.run(START, START + dt.timedelta(days=39), selection=MEDALLION)
    raw = pl.concat(
        [pl.read_csv(f, infer_schema=False, columns=["card_number"]) for f in sorted((generated_landing / "payment_refund").glob("*.csv"))
         if not _malformed(f)]
    )
    numbers = raw["card_number"].drop_nulls().str.replace_all(r"\D", "").unique().to_list()
    assert len(numbers) > 50
    standalone = r"(?:^|[^0-9A-Za-z])(?:\d[ -]?){12,18}\d(?:$|[^0-9A-Za-z])"
    tables = [p for p in (tmp_path / "lakehouse").glob("*/*") if (p / "_delta_log").is_dir()]
    assert len(tables) >= len(BRONZE_TABLES)
    for path in tables:
        frame = pl.read_delta(str(path))
        for name, dtype in frame.schema.items():
            if dtype == pl.String:
                col = frame.get_column(name).drop_nulls()
                assert not col.str.contains_any(numbers).any(), f"card number in {path.name}.{name}"
                assert not col.str.contains(standalone).any(), f"13-19 digit number in {path.name}.{name}"


def _malformed(path) -> bool:
    try:
        pl.read_csv(path, infer_schema=False, n_rows=1, columns=["card_number"])
        return False
    except Exception:
        return True


def test_a_rerun_loads_again_only_the_days_whose_drops_changed(landing_copy, tmp_path):
    """Drops are immutable: a second run of the window keeps the days it already holds (their rows
    and `_ingested_at` as they were), and loads again exactly the day whose file was re-delivered."""
    last = START + dt.timedelta(days=4)
    lake = make_lake(tmp_path, landing_copy)
    assert lake.run(START, last, selection=BRONZE).success
    before = {t: lake.read(f"bronze/{t}") for t in ("sales_returns", "payment_refund", "customer")}
    day = START + dt.timedelta(days=2)
    [drop] = (landing_copy / "sales_returns").glob(f"sales_returns_{day:%Y%m%d}_230000.csv")
    lines = drop.read_bytes().splitlines(keepends=True)
    drop.write_bytes(b"".join(lines[:-1]))  # the re-delivery lacks its last line
    assert lake.run(START, last, selection=BRONZE).success
    for table, old in before.items():
        new = lake.read(f"bronze/{table}")
        reloaded = {day} if table == "sales_returns" else set()
        ingested = dict(new.group_by("drop_date").agg(pl.col("_ingested_at").max()).iter_rows())
        previously = dict(old.group_by("drop_date").agg(pl.col("_ingested_at").max()).iter_rows())
        assert {d for d in ingested if ingested[d] != previously[d]} == reloaded, table
        key = ["drop_date", "_source_file", "_row_number"]
        cut = (pl.col("_source_file") == f"sales_returns/{drop.name}") & (pl.col("_row_number") == len(lines) - 1)
        expected = old.filter(~cut) if reloaded else old
        assert_frame_equal(new.drop("_ingested_at").sort(key), expected.drop("_ingested_at").sort(key))
    # What the card tokens were made with is part of what was loaded: another key loads every day again.
    from retail_lakehouse.definitions import build_defs
    from retail_lakehouse.orchestration import run_range
    from retail_lakehouse.settings import Settings

    key_file = tmp_path / "other.key"
    key_file.write_text("another-test-key-not-a-secret")
    settings = Settings(landing_root=landing_copy, lake_root=tmp_path / "lakehouse", start_date=START, token_key_file=key_file)
    assert run_range(build_defs(settings), START, last, selection=dg.AssetSelection.assets(["bronze", "payment_refund"])).success
    again = lake.read("bronze/payment_refund")
    assert again["_ingested_at"].min() > before["payment_refund"]["_ingested_at"].max()
    assert set(again["card_token"].drop_nulls()).isdisjoint(before["payment_refund"]["card_token"].drop_nulls())


def _partition_metadata(result: dg.ExecuteInProcessResult) -> dict:
    # Left out: the Delta version (a spilled window is committed a month at a time) and the location.
    return {
        (e.asset_key.to_user_string(), e.partition): {k: str(v) for k, v in e.materialization.metadata.items() if k not in ("delta_version", "table_uri")}
        for e in result.get_asset_materialization_events()
    }


def test_a_window_spilled_month_by_month_writes_what_a_window_held_whole_writes(landing_copy, tmp_path, monkeypatch):
    """Forty days across a month's end, with a day whose drop is missing (kept out of the write):
    every month spilled to local files and written from them gives the tables, and each day's
    rows, rejections and publication, of the window held in memory."""
    from retail_lakehouse.bronze import assets as bronze_assets

    from retail_lakehouse.landing import SOURCE_COLUMNS

    for f in (landing_copy / "loyalty").glob(f"loyalty_{START + dt.timedelta(days=33):%Y%m%d}_*.csv"):
        f.unlink()
    # A card number typed into a drop of each month: the masked counts are summed across months.
    for day in (5, 35):
        [drop] = (landing_copy / "loyalty").glob(f"loyalty_{START + dt.timedelta(days=day):%Y%m%d}_*.csv")
        with drop.open("a", encoding="utf-8") as out:
            out.write(",".join(f"E-CARD-{day}" if c == "event_id" else "4111 1111 1111 1111" for c in SOURCE_COLUMNS["loyalty"]) + "\n")
    last = START + dt.timedelta(days=39)
    held = make_lake(tmp_path / "held", landing_copy)
    held_result = held.run(START, last, selection=BRONZE, raise_on_error=False)
    ingest, kinds = bronze_assets._ingest, []

    def spy(*args, **kwargs):
        out = ingest(*args, **kwargs)
        kinds.append(type(out[0]))
        return out

    monkeypatch.setattr(bronze_assets, "SPILL_BYTES", 0)
    monkeypatch.setattr(bronze_assets, "_ingest", spy)
    spilled = make_lake(tmp_path / "spilled", landing_copy)
    spilled_result = spilled.run(START, last, selection=BRONZE, raise_on_error=False)
    assert kinds and set(kinds) == {pl.LazyFrame}
    a, b = _bronze_tables(held), _bronze_tables(spilled)
    for table in BRONZE_TABLES:
        assert_frame_equal(a[table], b[table])
    assert a["loyalty"]["drop_date"].n_unique() == 39 and a["sales_returns"]["drop_date"].n_unique() == 40
    metadata = _partition_metadata(held_result)
    assert metadata == _partition_metadata(spilled_result)
    assert metadata[("bronze/loyalty", (START + dt.timedelta(days=33)).isoformat())]["published"] == "BoolMetadataValue(value=False)"
    # Against the table itself: each masked value it holds, counted per column.
    from retail_lakehouse.bronze.transforms import CARD_MASK_PREFIX

    held_masks = a["loyalty"].select(pl.col(pl.String).str.contains(CARD_MASK_PREFIX, literal=True).sum()).row(0, named=True)
    [counted] = [e.materialization.metadata["card_numbers_masked"].value for e in held_result.get_asset_materialization_events() if e.asset_key.path == ["bronze", "loyalty"]][:1]
    assert counted == {c: n for c, n in held_masks.items() if n} and sum(counted.values()) >= 2
