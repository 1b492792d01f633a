"""The Delta window writer: exactly the run's window is replaced, nothing else, ever."""

import datetime as dt
import json
import os
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from deltalake import DeltaTable, write_deltalake

from retail_lakehouse import storage
from retail_lakehouse.orchestration import range_tags
from retail_lakehouse.partitions import daily_partitions, parse_partition_key
from retail_lakehouse.storage import (
    PARTITION_COLUMN,
    WRITE_CHUNK_DAYS,
    Audited,
    DeltaIOManager,
    LocalLakehouse,
    StagedFile,
    TableNotFound,
    window_predicate,
    write_whole,
    write_window,
)

D = dt.date(2026, 9, 1)


def _frame(days: range, tag: str) -> pl.DataFrame:
    return pl.DataFrame({"day": [D + dt.timedelta(days=i) for i in days], "tag": [tag] * len(days)})


def test_a_window_write_replaces_that_window_and_keeps_every_other_day(tmp_path):
    uri = str(tmp_path / "t")
    write_window(uri, _frame(range(10), "first"), "day", D, D + dt.timedelta(days=10))
    write_window(uri, _frame(range(3, 5), "second"), "day", D + dt.timedelta(days=3), D + dt.timedelta(days=6))
    out = pl.read_delta(uri).sort("day")
    assert out.height == 9  # day 5 was in the window and had no new rows: it is gone
    assert out.filter(pl.col("tag") == "second")["day"].to_list() == [D + dt.timedelta(days=3), D + dt.timedelta(days=4)]
    assert out.filter(pl.col("tag") == "first").height == 7


@pytest.mark.parametrize("large", [True, False], ids=["large frame: a commit per chunk", "small frame: one commit"])
def test_a_long_window_is_written_a_chunk_at_a_time_and_ends_as_one_write_would(tmp_path, monkeypatch, large):
    """A window of 75 days (over WRITE_CHUNK_DAYS) with kept days in two chunks and an empty day;
    a frame over WRITE_CHUNK_BYTES (here: any) is written a chunk at a time, a smaller one at once."""
    days = 75
    assert days > WRITE_CHUNK_DAYS
    if large:
        monkeypatch.setattr(storage, "WRITE_CHUNK_BYTES", 0)
    chunked = str(tmp_path / "chunked")
    keep = [D + dt.timedelta(days=5), D + dt.timedelta(days=40)]
    fresh = _frame(range(days), "second").filter(~pl.col("day").is_in(keep) & (pl.col("day") != D + dt.timedelta(days=60)))
    write_window(chunked, _frame(range(days), "first"), "day", D, D + dt.timedelta(days=days))
    before = DeltaTable(chunked).version()
    version = write_window(chunked, fresh, "day", D, D + dt.timedelta(days=days), keep=keep)
    assert version - before == (-(-days // WRITE_CHUNK_DAYS) if large else 1)
    # The referee: the same outcome computed by hand.
    expected = pl.concat([fresh, _frame(range(days), "first").filter(pl.col("day").is_in(keep))]).sort("day")
    assert_frame_equal(pl.read_delta(chunked).sort("day"), expected, check_column_order=False)


def test_rows_outside_the_window_are_refused_before_anything_is_written(tmp_path):
    uri = str(tmp_path / "t")
    write_window(uri, _frame(range(3), "first"), "day", D, D + dt.timedelta(days=3))
    with pytest.raises(ValueError, match="1 rows have day outside the partition window 2026-09-02..2026-09-02"):
        write_window(uri, _frame(range(1, 3), "bad"), "day", D + dt.timedelta(days=1), D + dt.timedelta(days=2))
    assert pl.read_delta(uri)["tag"].to_list() == ["first"] * 3


def test_predicates_are_built_from_dates_only():
    assert window_predicate("day", D, D + dt.timedelta(days=1)) == "day >= '2026-09-01' AND day < '2026-09-02'"
    with pytest.raises(TypeError):
        window_predicate("day", "2026-09-01' OR '1'='1", D)
    with pytest.raises(ValueError):
        window_predicate("day; drop", D, D)
    with pytest.raises(ValueError, match="not a date like 2026-09-01"):
        parse_partition_key("2026-9-1' OR 1=1")


def _io_assets(seen: dict):
    partitions = daily_partitions(D)

    @dg.asset(key=["bronze", "t"], partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run(), metadata={PARTITION_COLUMN: "day"})
    def t(context: dg.AssetExecutionContext) -> pl.DataFrame:
        window = context.partition_time_window
        days = pl.date_range(window.start.date(), window.end.date(), closed="left", eager=True)
        return pl.DataFrame({"day": days, "run": context.run.run_id})

    @dg.asset(key=["silver", "whole"], ins={"t": dg.AssetIn(["bronze", "t"])})
    def whole(t: pl.LazyFrame) -> pl.DataFrame:
        seen["whole"] = t.collect()
        return seen["whole"]

    @dg.asset(key=["silver", "part"], ins={"t": dg.AssetIn(["bronze", "t"])}, partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run(), metadata={PARTITION_COLUMN: "day"})
    def part(t: pl.LazyFrame) -> pl.DataFrame:
        seen["part"] = t.collect()
        return seen["part"]

    return [t, whole, part]


def test_io_manager_serves_ranges_to_partitioned_readers_and_everything_to_unpartitioned_ones(tmp_path):
    seen: dict = {}
    defs = dg.Definitions(
        assets=_io_assets(seen),
        jobs=[dg.define_asset_job("all", selection="*")],
        resources={"io_manager": DeltaIOManager(lake=LocalLakehouse(root=str(tmp_path)))},
        executor=dg.in_process_executor,
    )
    job = defs.resolve_job_def("all")
    job.execute_in_process(tags=range_tags(D, D + dt.timedelta(days=9)))
    result = job.execute_in_process(tags=range_tags(D + dt.timedelta(days=4), D + dt.timedelta(days=5)))
    assert sorted(seen["part"]["day"].to_list()) == [D + dt.timedelta(days=4), D + dt.timedelta(days=5)]
    assert seen["whole"].height == 10
    table = pl.read_delta(str(tmp_path / "bronze" / "t"))
    assert table.height == 10
    assert table.filter(pl.col("run") == result.run_id).height == 2
    mats = result.asset_materializations_for_node("bronze__t")
    assert sorted(m.partition for m in mats) == ["2026-09-05", "2026-09-06"]
    for mat in mats:
        # Each partition reports its own rows, not the window's.
        day = dt.date.fromisoformat(mat.partition)
        assert mat.metadata["dagster/row_count"].value == table.filter(pl.col("day") == day).height == 1
        assert mat.metadata["partitions"].value == "2026-09-05..2026-09-06"
    audit = pl.read_delta(str(tmp_path / "ops" / "audit_log"))
    assert set(audit.filter(pl.col("run_id") == result.run_id)["table"]) == {"t", "whole", "part"}


def _stage(uri: str, frame: pl.DataFrame) -> tuple[StagedFile, ...]:
    """What an engine's workers leave in a table's folder: a file per day, uncommitted."""
    files = []
    for (day,), part in frame.group_by("day"):
        relative = f"day={day.isoformat()}/part-{uuid.uuid4().hex}.parquet"
        Path(uri, relative).parent.mkdir(parents=True, exist_ok=True)
        part.drop("day").write_parquet(Path(uri, relative))
        files.append(StagedFile(day, relative, Path(uri, relative).stat().st_size, part.height))
    return tuple(files)


@pytest.mark.parametrize("files_match", [True, False])
def test_the_io_manager_commits_an_engines_files_of_the_passing_days_and_deletes_the_rest(tmp_path, files_match):
    lake = LocalLakehouse(root=str(tmp_path))
    key = dg.AssetKey(["gold", "t"])
    uri = lake.table_uri(key)
    lake.write_window(key, _frame(range(4), "old"), "day", D, D + dt.timedelta(days=4))
    failed = D + dt.timedelta(days=2)

    @dg.asset(key=key, partitions_def=daily_partitions(D), backfill_policy=dg.BackfillPolicy.single_run(), metadata={PARTITION_COLUMN: "day"})
    def t() -> Audited:
        frame = _frame(range(1, 4), "new")
        # Files that do not hold the frame's rows (a day missing) are not committed: the frame is written.
        staged = _stage(uri, frame if files_match else frame.filter(pl.col("day") != D + dt.timedelta(days=3)))
        return Audited(frame, frozenset({failed}), staged=staged)

    result = dg.materialize([t], resources={"io_manager": DeltaIOManager(lake=lake)}, tags=range_tags(D + dt.timedelta(days=1), D + dt.timedelta(days=3)))
    assert result.success
    table = pl.read_delta(uri).sort("day")
    assert table.rows() == [(D, "old"), (D + dt.timedelta(days=1), "new"), (failed, "old"), (D + dt.timedelta(days=3), "new")]
    # The staged files left on disk: committed as they were (days 1 and 3), or, when they did not
    # match, none; the withheld day's were deleted either way.
    committed = {Path(f).name for f in DeltaTable(uri).file_uris()}
    left = {f.name for f in Path(uri).rglob("*.parquet") if re.fullmatch(r"part-[0-9a-f]{32}\.parquet", f.name)}
    assert left <= committed
    assert len(left) == (2 if files_match else 0)


@pytest.mark.parametrize("create", ["window", "staged", "whole", "append", "existing"])
def test_every_table_checkpoints_its_log_every_tenth_commit_and_reads_the_same(tmp_path, create):
    uri = str(tmp_path / "t")
    days = (D, D + dt.timedelta(days=1))
    first = _frame(range(2), "v0")
    if create == "window":
        write_window(uri, first, "day", days[0], days[1] + dt.timedelta(days=1))
    elif create == "staged":
        committed = storage.commit_staged(uri, _stage(uri, first), pl.Schema({"tag": pl.String, "day": pl.Date}), "day", days[0], days[1] + dt.timedelta(days=1))
        assert committed == DeltaTable(uri).version() == 1  # created, then committed
    elif create == "whole":
        write_whole(uri, first)
    elif create == "append":
        storage.append(uri, first)
    else:
        # A table created before the property, with delta-rs' defaults: the next write sets it.
        write_deltalake(uri, first.to_arrow(), partition_by=["day"])
        assert DeltaTable(uri).metadata().configuration == {}
        storage.write_days(uri, first.filter(pl.col("day") == days[1]), "day", [days[1]])
    assert DeltaTable(uri).metadata().configuration == storage.TABLE_PROPERTIES
    log = Path(uri, "_delta_log")
    version = DeltaTable(uri).version()
    # Day 1 rewritten until version 10: the tenth commit (version 9), and only it, wrote a checkpoint.
    while version < 10:
        second = pl.DataFrame({"day": [days[1]], "tag": [f"v{version + 1}"]})
        if create in ("window", "staged", "existing"):
            version = storage.write_days(uri, second, "day", [days[1]])
        else:
            version = write_whole(uri, pl.concat([first.filter(pl.col("day") == days[0]), second]))
        assert bool(list(log.glob("*.checkpoint.parquet"))) == (version >= 9), version
    assert [p.name for p in log.glob("*.checkpoint.parquet")] == ["00000000000000000009.checkpoint.parquet"]
    assert json.loads((log / "_last_checkpoint").read_text())["version"] == 9
    # Read from the checkpoint and the one commit after it: the rows the writes left.
    assert sorted(pl.read_delta(uri).select("day", "tag").rows()) == [(D, "v0"), (days[1], "v10")]


def _kept(lf: pl.LazyFrame) -> bool:
    """Whether a lazy frame is over rows in memory (a kept read) rather than over the table's files."""
    plan = lf.explain()
    assert plan.startswith(("DF [", "Parquet SCAN")), plan
    return plan.startswith("DF [")


def test_a_shared_read_is_read_once_per_run_and_table_version(tmp_path, monkeypatch):
    lake = LocalLakehouse(root=str(tmp_path))
    key = dg.AssetKey(["gold", "t"])
    lake.write_whole(key, pl.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [0.5, 1.5]}))

    def read(columns):
        lf = lake.read_shared(key, columns)
        assert_frame_equal(lf.select(columns).collect(), pl.read_delta(lake.table_uri(key)).select(columns))
        return _kept(lf)

    # Outside a run nothing is kept: the step's own columns are read from the files.
    assert not read(["a", "b"]) and lake._shared is None
    lake.setup_for_execution(dg.build_init_resource_context())
    try:
        assert [read(["a", "b"]), read(["b"]), read(["a"])] == [True, True, True]
        held = dict(lake._shared)
        assert len(held) == 1 and list(held.values())[0].columns == ["a", "b"]
        # The kept frame serves the later reads: the same object, not a second read.
        read(["a"])
        assert lake._shared == held and all(lake._shared[k] is v for k, v in held.items())
        # A new version of the table is read again.
        lake.write_whole(key, pl.DataFrame({"a": [3], "b": ["z"], "c": [2.5]}))
        assert read(["c"]) and len(lake._shared) == 2
        # Columns that would take what is kept past the bound are left to each step's own read.
        monkeypatch.setattr(storage, "SHARED_READ_BYTES", sum(f.estimated_size() for f in lake._shared.values()) + 100)
        lake.write_whole(key, pl.DataFrame({"a": range(10), "b": ["w"] * 10, "c": [3.5] * 10}))
        assert not read(["a", "b", "c"]) and len(lake._shared) == 2
    finally:
        lake.teardown_after_execution(dg.build_init_resource_context())
    assert lake._shared is None


def test_a_run_keeps_its_open_tables_current_on_its_own_thread_only(tmp_path):
    lake = LocalLakehouse(root=str(tmp_path))
    key = dg.AssetKey(["gold", "daily"])
    uri = lake.table_uri(key)
    lake.write_window(key, _frame(range(2), "v0"), "day", D, D + dt.timedelta(days=2))
    lake.setup_for_execution(dg.build_init_resource_context())
    try:
        kept = storage._table(uri)
        assert storage._table(uri) is kept
        # A commit by another writer (a fresh table object, as another process would open) is seen.
        write_deltalake(DeltaTable(uri), _frame(range(1), "other").to_arrow(), mode="overwrite", predicate=f"day = '{D.isoformat()}'")
        assert lake.version(key) == 1 and storage._table(uri) is kept
        assert sorted(lake.read(key)["tag"]) == ["other", "v0"]
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(storage._table, uri).result() is not kept
    finally:
        lake.teardown_after_execution(dg.build_init_resource_context())
    assert storage._table(uri) is not kept


def test_the_newest_partition_from_the_log_is_the_newest_day_with_rows(tmp_path):
    lake = LocalLakehouse(root=str(tmp_path))
    key = dg.AssetKey(["gold", "daily"])
    assert lake.newest_partition(key, "day") is None

    def newest_read():
        return lake.scan(key).select(pl.col("day").max()).collect().item()

    lake.write_window(key, _frame(range(6), "v"), "day", D, D + dt.timedelta(days=6))
    assert lake.newest_partition(key, "day") == newest_read() == D + dt.timedelta(days=5)
    # The last two days rewritten with rows for the first of them only: the other's files are removed.
    lake.write_window(key, _frame(range(4, 5), "w"), "day", D + dt.timedelta(days=4), D + dt.timedelta(days=6))
    assert lake.newest_partition(key, "day") == newest_read() == D + dt.timedelta(days=4)
    lake.write_window(key, _frame(range(0), "x"), "day", D, D + dt.timedelta(days=6))
    assert lake.newest_partition(key, "day") is None and newest_read() is None


def test_a_shared_read_of_a_window_is_kept_per_window(tmp_path):
    lake = LocalLakehouse(root=str(tmp_path))
    key = dg.AssetKey(["gold", "daily"])
    lake.write_window(key, _frame(range(6), "v"), "day", D, D + dt.timedelta(days=6))
    lake.setup_for_execution(dg.build_init_resource_context())
    try:
        for days in (2, 4, 2):
            window = ("day", D, D + dt.timedelta(days=days))
            got = lake.read_shared(key, ["day"], *window)
            assert _kept(got)
            assert_frame_equal(got.collect(), lake.scan(key, *window).select("day").collect())
            assert got.collect().height == days
        assert len(lake._shared) == 2
    finally:
        lake.teardown_after_execution(dg.build_init_resource_context())


def test_an_engines_files_with_rows_outside_the_window_are_refused_like_a_frame(tmp_path):
    lake = LocalLakehouse(root=str(tmp_path))
    key = dg.AssetKey(["gold", "t"])
    uri = lake.table_uri(key)
    lake.write_window(key, _frame(range(4), "old"), "day", D, D + dt.timedelta(days=4))

    @dg.asset(key=key, partitions_def=daily_partitions(D), backfill_policy=dg.BackfillPolicy.single_run(), metadata={PARTITION_COLUMN: "day"})
    def t() -> Audited:
        frame = _frame(range(1, 4), "new")  # day 3 is outside the run's days 1..2
        return Audited(frame, staged=_stage(uri, frame))

    result = dg.materialize(
        [t], resources={"io_manager": DeltaIOManager(lake=lake)}, tags=range_tags(D + dt.timedelta(days=1), D + dt.timedelta(days=2)),
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "outside the partition window" in failure.step_failure_data.error.to_string()
    assert pl.read_delta(uri)["tag"].unique().to_list() == ["old"]
    assert not [f for f in Path(uri).rglob("*.parquet") if re.fullmatch(r"part-[0-9a-f]{32}\.parquet", f.name)]


def test_reading_a_table_that_was_never_materialized_says_so(tmp_path):
    result = dg.materialize(
        _io_assets({}),
        resources={"io_manager": DeltaIOManager(lake=LocalLakehouse(root=str(tmp_path)))},
        selection=[dg.AssetKey(["silver", "whole"])],
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "bronze/t has not been materialized yet" in str(failure.step_failure_data.error)


def test_maintenance_compacts_small_files_and_keeps_every_row(tmp_path):
    from deltalake import write_deltalake

    from retail_lakehouse.maintenance import maintain

    uri = str(tmp_path / "t")
    for i in range(5):
        write_deltalake(uri, _frame(range(2), f"append{i}").to_arrow(), mode="append", partition_by=["day"])
    rows = pl.read_delta(uri).sort("day", "tag")
    assert len(DeltaTable(uri).file_uris()) == 10
    stats = maintain(uri)
    assert stats["files_removed"] == 10 and stats["files_added"] == 2
    assert len(DeltaTable(uri).file_uris()) == 2
    assert pl.read_delta(uri).sort("day", "tag").equals(rows)


def _age_tombstones(uri: str, version: int, days: int) -> None:
    """Move the remove actions of commit `version` `days` into the past (what a week of waiting does)."""
    log = Path(uri) / "_delta_log" / f"{version:020d}.json"
    actions = [json.loads(line) for line in log.read_text().splitlines()]
    for action in actions:
        if "remove" in action:
            action["remove"]["deletionTimestamp"] -= days * 24 * 3600 * 1000
    log.write_text("\n".join(json.dumps(a) for a in actions) + "\n")


def test_vacuum_deletes_files_removed_before_the_retention_and_keeps_younger_ones(tmp_path):
    from retail_lakehouse.maintenance import RETENTION_HOURS, maintain

    uri = str(tmp_path / "t")
    files = []
    for i in range(3):
        write_whole(uri, pl.DataFrame({"v": [i]}))
        [file] = DeltaTable(uri).file_uris()
        files.append(Path(file))
    # Version 1 removed version 0's file 8 days ago; version 2 removed version 1's file just now.
    _age_tombstones(uri, 1, days=RETENTION_HOURS // 24 + 1)
    # Files no commit references: a writer's that failed before committing 8 days ago, and one
    # that may still be committing.
    old_orphan, young_orphan = Path(uri, "part-old-orphan.parquet"), Path(uri, "part-young-orphan.parquet")
    for orphan in (old_orphan, young_orphan):
        pl.DataFrame({"v": [9]}).write_parquet(orphan)
    stale = time.time() - (RETENTION_HOURS + 24) * 3600
    os.utime(old_orphan, (stale, stale))
    stats = maintain(uri)
    assert stats["vacuumed"] == 2
    assert [f.exists() for f in files] == [False, True, True]
    assert (old_orphan.exists(), young_orphan.exists()) == (False, True)
    assert pl.read_delta(uri)["v"].to_list() == [2]
    assert pl.read_delta(uri, version=1)["v"].to_list() == [1]  # time travel within the retention still works


def test_lake_merge_upserts_by_key_or_only_inserts(tmp_path):
    lake = LocalLakehouse(root=str(tmp_path))
    key = dg.AssetKey(["gold", "t"])
    with pytest.raises(TableNotFound, match="gold/t has not been materialized yet"):
        lake.scan(key)
    assert lake.merge(key, pl.DataFrame({"id": [1, 2], "v": ["a", "b"]}), on=["id"]) == 0
    assert lake.merge(key, pl.DataFrame({"id": [2, 3], "v": ["B", "c"]}), on=["id"]) == 1
    assert lake.merge(key, pl.DataFrame({"id": [3, 4], "v": ["C", "d"]}), on=["id"], update=False) == 2
    assert lake.read(key).sort("id").rows() == [(1, "a"), (2, "B"), (3, "c"), (4, "d")]
    assert lake.scan(key).filter(pl.col("id") > 2).collect().height == 2


def test_weekly_maintenance_job_runs_over_the_lakehouse(generated_landing, tmp_path):
    from retail_lakehouse_tests.conftest import START, make_lake

    lake = make_lake(tmp_path, generated_landing)
    assert lake.run(START, START + dt.timedelta(days=2), selection=dg.AssetSelection.groups("bronze")).success
    assert lake.defs.resolve_job_def("delta_maintenance").execute_in_process().success
    assert lake.defs.resolve_schedule_def("weekly_delta_maintenance").cron_schedule == "0 3 * * 0"
