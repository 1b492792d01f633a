"""The POS stream: exactly-once merges into inventory positions, checked against a recomputation."""

import datetime as dt
import json
import time

import dagster as dg
import polars as pl
from deltalake import DeltaTable
from polars.testing import assert_frame_equal

from retail_lakehouse.gold.positions import POS_EVENT_SCHEMA, positions, sales_windows_5min
from retail_lakehouse.landing import LocalLandingZone
from retail_lakehouse.stream.rules import MAX_BATCHES_PER_RUN
from retail_lakehouse.stream.sensor import requested_batches, run_config
from retail_lakehouse.stream.tables import LEDGER, POSITIONS, apply_batch
from retail_lakehouse_tests.conftest import START, make_lake

UTC = dt.timezone.utc
LAST = START + dt.timedelta(days=9)
# Snapshots stop three days before the last POS batch, so the stream really moves positions.
SNAPSHOTS_THROUGH = LAST - dt.timedelta(days=3)


def _events(rows):
    return pl.DataFrame(
        [{"event_id": e, "event_ts": ts, "store_id": "S1", "product_id": "P1", "quantity": q, "batch": "b"} for e, ts, q in rows],
        schema=POS_EVENT_SCHEMA,
    )


def test_position_is_latest_snapshot_minus_later_pos_events_each_counted_once():
    snaps = pl.DataFrame({"snapshot_date": [dt.date(2026, 9, 1), dt.date(2026, 9, 2)], "store_id": ["S1"] * 2, "product_id": ["P1"] * 2,
                          "quantity_on_hand": [50, 40], "reorder_point": [10, 10]})
    events = _events([
        ("E1", dt.datetime(2026, 9, 2, 12, tzinfo=UTC), 3),   # on the snapshot's own date: already in it
        ("E2", dt.datetime(2026, 9, 3, 9, tzinfo=UTC), 5),
        ("E2", dt.datetime(2026, 9, 3, 9, tzinfo=UTC), 5),    # the same event twice counts once
        ("E3", dt.datetime(2026, 9, 3, 10, tzinfo=UTC), -2),  # returned at the till
        ("E4", dt.datetime(2026, 9, 3, 11, tzinfo=UTC), 30),
    ])
    [row] = positions(snaps, events).to_dicts()
    assert (row["snapshot_date"], row["pos_quantity_since"], row["quantity_on_hand"]) == (dt.date(2026, 9, 2), 33, 7)
    assert row["is_below_reorder_point"] is True
    assert row["last_updated"] == dt.datetime(2026, 9, 3, 11, tzinfo=UTC)


def test_five_minute_windows_split_sold_and_returned_units():
    events = _events([
        ("E1", dt.datetime(2026, 9, 3, 9, 0, 1, tzinfo=UTC), 2),
        ("E2", dt.datetime(2026, 9, 3, 9, 4, 59, tzinfo=UTC), -1),
        ("E3", dt.datetime(2026, 9, 3, 9, 5, 0, tzinfo=UTC), 4),
    ])
    out = sales_windows_5min(events)
    assert out.select("window_start", "units_sold", "units_returned", "net_units").rows() == [
        (dt.datetime(2026, 9, 3, 9, 0, tzinfo=UTC), 2, 1, 1),
        (dt.datetime(2026, 9, 3, 9, 5, tzinfo=UTC), 4, 0, 4),
    ]


def _independent_positions(landing) -> dict:
    """Latest snapshot − Σ POS on later dates, straight from the landing files, in plain Python."""
    latest: dict = {}
    for path in sorted((landing / "inventory").glob("inventory_*_230000.csv")):
        for line in path.read_text().splitlines()[1:]:
            day, store, product, qoh, _ = line.split(",")
            # Negative stock is quarantined by silver; only snapshots the run loaded count.
            if int(qoh) >= 0 and day <= SNAPSHOTS_THROUGH.isoformat():
                latest[(store, product)] = max(latest.get((store, product), ("", 0)), (day, int(qoh)))
    seen, sold = set(), {}
    for path in sorted((landing / "pos_events").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            e = json.loads(line)
            if e["event_id"] in seen:
                continue
            seen.add(e["event_id"])
            key = (e["store_id"], e["product_id"])
            if key in latest and e["event_ts"][:10] > latest[key][0] and e["event_ts"][:10] <= LAST.isoformat():
                sold[key] = sold.get(key, 0) + int(e["quantity"])
    return {k: qoh - sold.get(k, 0) for k, (day, qoh) in latest.items()}


def _batches(landing) -> list[str]:
    return [f"pos_events/{p.name}" for p in sorted((landing / "pos_events").glob("*.jsonl")) if p.name.split("_")[2] <= LAST.strftime("%Y%m%d")]


def _io(lake):
    return lake.defs.resources["lake"], LocalLandingZone(root=str(lake.landing))


def test_replaying_every_batch_twice_and_a_crash_before_the_cursor_equal_one_clean_pass(generated_landing, tmp_path):
    once = make_lake(tmp_path / "once", generated_landing)
    assert once.run(START, SNAPSHOTS_THROUGH).success
    io, landing = _io(once)
    for batch in _batches(generated_landing):
        apply_batch(io, landing, batch)
    expected = once.read("gold/inventory_positions").drop("last_updated").sort("store_id", "product_id")
    assert expected["pos_quantity_since"].abs().sum() > 0  # the batches changed stock, not only the ledger

    twice = make_lake(tmp_path / "twice", generated_landing)
    assert twice.run(START, SNAPSHOTS_THROUGH).success
    io2, landing2 = _io(twice)
    batches = _batches(generated_landing)
    for batch in batches:
        apply_batch(io2, landing2, batch)
    # Replays: the whole stream again, and the "crashed" run (written, cursor not moved) again.
    statuses = [apply_batch(io2, landing2, b).status for b in batches + batches[:3]]
    assert set(statuses) == {"already applied"}
    got = twice.read("gold/inventory_positions").drop("last_updated").sort("store_id", "product_id")
    assert_frame_equal(got, expected)
    assert twice.read("gold/pos_ledger")["event_id"].is_unique().all()

    # The daily recomputation from the same inputs agrees with the streamed merges.
    assert twice.run(SNAPSHOTS_THROUGH).success
    assert_frame_equal(twice.read("gold/inventory_positions").drop("last_updated").sort("store_id", "product_id"), expected)

    reference = _independent_positions(generated_landing)
    table = {(r["store_id"], r["product_id"]): r["quantity_on_hand"] for r in expected.iter_rows(named=True)}
    assert len(table) > 0 and table == reference


def test_a_run_that_dies_between_ledger_and_positions_is_repaired_by_the_replay(generated_landing, tmp_path):
    lake = make_lake(tmp_path, generated_landing)
    assert lake.run(START, SNAPSHOTS_THROUGH).success
    io, landing = _io(lake)
    batches = _batches(generated_landing)
    for batch in batches[:-1]:
        apply_batch(io, landing, batch)
    before = lake.read("gold/inventory_positions")
    # Simulate the crash: the last batch reached the ledger, its positions merge never happened.
    from deltalake import CommitProperties, Transaction

    from retail_lakehouse.bronze.transforms import read_jsonl_drop
    from retail_lakehouse.landing import POS_COLUMNS
    from retail_lakehouse.stream.rules import clean_pos_events

    last = batches[-1]
    events, _ = clean_pos_events(read_jsonl_drop((generated_landing / last).read_bytes(), POS_COLUMNS), last)
    DeltaTable(io.table_uri(LEDGER)).merge(
        events.to_arrow(), predicate="t.event_id = s.event_id", source_alias="s", target_alias="t",
        commit_properties=CommitProperties(app_transactions=[Transaction(app_id=f"retail_lakehouse:pos:{last}", version=1)]),
    ).when_not_matched_insert_all().execute()
    assert_frame_equal(lake.read("gold/inventory_positions"), before)
    assert apply_batch(io, landing, last).status == "already applied"
    clean = make_lake(tmp_path / "clean", generated_landing)
    assert clean.run(START, SNAPSHOTS_THROUGH).success
    io3, landing3 = _io(clean)
    for batch in batches:
        apply_batch(io3, landing3, batch)
    key = ["store_id", "product_id"]
    assert_frame_equal(lake.read("gold/inventory_positions").drop("last_updated").sort(key), clean.read("gold/inventory_positions").drop("last_updated").sort(key))


def test_sensor_tick_over_hundreds_of_batches_is_fast_and_bounds_each_run(landing_copy, tmp_path):
    lake = make_lake(tmp_path, landing_copy)
    sensor = lake.defs.resolve_sensor_def("pos_stream")
    folder = landing_copy / "pos_events"
    template = next(folder.glob("*.jsonl")).read_text()
    for i in range(200):
        (folder / f"pos_events_20261101_120000_{i + 1:04d}.jsonl").write_text(template)
    context = dg.build_sensor_context(cursor=None, resources={"landing": LocalLandingZone(root=str(landing_copy))})
    started = time.perf_counter()
    result = sensor(context)
    assert time.perf_counter() - started < 5
    total = len(list(folder.glob("*.jsonl")))
    batches = [b for r in result.run_requests for b in requested_batches(r.run_config)]
    assert sorted(batches) == sorted(f"pos_events/{p.name}" for p in folder.glob("*.jsonl")) and len(batches) == total
    assert max(len(requested_batches(r.run_config)) for r in result.run_requests) <= MAX_BATCHES_PER_RUN
    # A late, out-of-order batch (older stamp, new file) is still picked up on the next tick.
    (folder / "pos_events_20260901_030000_0099.jsonl").write_text(template)
    late = sensor(dg.build_sensor_context(cursor=result.cursor, resources={"landing": LocalLandingZone(root=str(landing_copy))}))
    assert [requested_batches(r.run_config) for r in late.run_requests] == [["pos_events/pos_events_20260901_030000_0099.jsonl"]]


def test_the_merge_job_materializes_the_positions_asset_with_its_checks(generated_landing, tmp_path):
    lake = make_lake(tmp_path, generated_landing)
    assert lake.run(START, SNAPSHOTS_THROUGH).success
    batches = _batches(generated_landing)[-3:]
    result = lake.defs.resolve_job_def("pos_merge").execute_in_process(run_config=run_config(batches))
    mats = {m.asset_key: m for m in result.asset_materializations_for_node(POSITIONS.to_python_identifier())}
    assert set(mats) == {POSITIONS, LEDGER}
    assert mats[POSITIONS].metadata["merged"].value == 3 and mats[POSITIONS].metadata["mode"].value == "stream"
    assert mats[LEDGER].metadata["batches"].value == 3
    assert set(lake.read("gold/pos_ledger")["batch"]) == set(batches)
    # A real materialization of the asset: its own checks ran on the merged table.
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"contract", "low_stock"} and checks["contract"].passed
    audit = lake.read("ops/audit_log").filter(pl.col("run_id") == result.run_id)
    assert sorted(audit["table"]) == ["inventory_positions", "pos_ledger"]


def test_stream_runs_and_the_daily_run_write_the_positions_through_the_same_asset(generated_landing, tmp_path):
    lake = make_lake(tmp_path, generated_landing)
    daily = lake.run(START, SNAPSHOTS_THROUGH)
    stream = lake.defs.resolve_job_def("pos_merge").execute_in_process(run_config=run_config(_batches(generated_landing)[-2:]))
    again = lake.run(SNAPSHOTS_THROUGH)
    runs = [daily, stream, again]
    assert all(r.success for r in runs)
    for run in runs:
        [mat] = [m for m in run.asset_materializations_for_node(POSITIONS.to_python_identifier()) if m.asset_key == POSITIONS]
        assert mat.metadata["mode"].value == ("stream" if run is stream else "recompute")
    # Oldest first: the recompute replaced the table, each batch merged into it, the recompute again.
    history = DeltaTable(lake.table_path("gold/inventory_positions")).history()
    assert [h["operation"] for h in reversed(history)] == ["WRITE", "MERGE", "MERGE", "WRITE"]
    audit = lake.read("ops/audit_log").filter(pl.col("table") == "inventory_positions")
    assert sorted(audit["run_id"]) == sorted(r.run_id for r in runs)
