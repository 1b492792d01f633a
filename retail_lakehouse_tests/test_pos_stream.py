"""The POS stream: exactly-once merges into inventory positions, checked against a recomputation."""

import datetime as dt
import json
import time

import dagster as dg
import polars as pl
from deltalake import DeltaTable
from polars.testing import assert_frame_equal

from retail_lakehouse.gold.positions import POS_EVENT_SCHEMA, positions, sales_windows_5min
from retail_lakehouse.landing import LocalLandingZone, date_prefixes
from retail_lakehouse.storage import LocalLakehouse
from retail_lakehouse.stream.rules import LATE_DAYS, StreamCursor
from retail_lakehouse.stream.sensor import build_pos_sensor, requested_batches, run_config
from retail_lakehouse.stream.tables import LEDGER, POSITIONS, WINDOWS, apply_batch, apply_batches
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
    from retail_lakehouse.bronze.transforms import read_jsonl_drop
    from retail_lakehouse.landing import POS_COLUMNS
    from retail_lakehouse.stream.rules import clean_pos_events

    last = batches[-1]
    events, _ = clean_pos_events(read_jsonl_drop((generated_landing / last).read_bytes(), POS_COLUMNS), last)
    DeltaTable(io.table_uri(LEDGER)).merge(
        events.to_arrow(), predicate="t.event_id = s.event_id", source_alias="s", target_alias="t",
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


def _pos_line(event_id, ts, store="S001", product="P00001", quantity=1) -> str:
    return json.dumps({"event_id": event_id, "event_ts": ts, "store_id": store, "product_id": product, "quantity": quantity})


def _write_batch(folder, day: dt.date, seq: int, lines: list[str]) -> str:
    """A micro-batch of `day`, one every 5 minutes by `seq`; returns its batch name."""
    stamp = (dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=5 * seq)).strftime("%H%M%S")
    name = f"pos_events_{day:%Y%m%d}_{stamp}_{seq + 1:04d}.jsonl"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(line + "\n" for line in lines))
    return f"pos_events/{name}"


def _stream(tmp_path, today, **caps):
    """A pos_stream sensor on a bare landing zone and lakehouse (no inventory), on a clock of ours."""
    landing, lake = LocalLandingZone(root=str(tmp_path / "landing")), LocalLakehouse(root=str(tmp_path / "lake"))
    sensor = build_pos_sensor(today=lambda: today[0], **caps)

    def tick(cursor):
        return _tick(sensor, cursor, {"landing": landing, "lake": lake})

    return tmp_path / "landing" / "pos_events", landing, lake, tick


def _tick(sensor, cursor, resources):
    # The lakehouse resource has a setup (the run lock, a no-op outside runs): a context manager.
    with dg.build_sensor_context(cursor=cursor, resources=resources) as context:
        return sensor(context)


def _requested(result) -> list[str]:
    return [b for r in result.run_requests for b in requested_batches(r.run_config)]


def test_a_backlog_is_requested_once_in_runs_sized_by_their_bytes(tmp_path):
    folder, _, _, _ = _stream(tmp_path, [dt.date(2026, 11, 30)])
    batches = [
        _write_batch(folder, dt.date(2026, 11, 1) + dt.timedelta(days=d), s, [_pos_line(f"E{d}-{s}-{i}", "2026-11-01 10:00:00") for i in range(1 + (d + s) % 6)])
        for d in range(30) for s in range(10)
    ]
    sizes = {f"pos_events/{p.name}": p.stat().st_size for p in folder.iterdir()}
    cap = 10_000
    *_, tick = _stream(tmp_path, [dt.date(2026, 11, 30)], max_run_bytes=cap)
    started = time.perf_counter()
    result = tick(None)
    assert time.perf_counter() - started < 1
    runs = [requested_batches(r.run_config) for r in result.run_requests]
    assert _requested(result) == batches  # each batch once, in delivery order
    # Greedy by bytes: a run is full when the next batch would pass the cap.
    assert all(sum(sizes[b] for b in run) <= cap for run in runs)
    assert all(sum(sizes[b] for b in run) + sizes[following[0]] > cap for run, following in zip(runs, runs[1:]))
    assert len(runs) == -(-sum(sizes.values()) // cap) or len(runs) == -(-sum(sizes.values()) // cap) + 1
    # With the default caps a backlog this small is one run, not one per 8 batches.
    *_, default = _stream(tmp_path, [dt.date(2026, 11, 30)])
    assert [len(requested_batches(r.run_config)) for r in default(None).run_requests] == [300]


def test_a_backlog_of_hundreds_of_batches_merges_exactly_once_and_a_redelivery_adds_only_its_new_event(landing_copy, tmp_path):
    lake = make_lake(tmp_path, landing_copy)
    assert lake.run(START, SNAPSHOTS_THROUGH).success
    folder = landing_copy / "pos_events"
    pairs = lake.read("silver/inventory").select("store_id", "product_id").unique().sort("store_id", "product_id").rows()
    for n in range(240):
        day = START + dt.timedelta(days=4 + n // 30)
        lines = [_pos_line(f"X{n}-{i}", f"{day} 1{i}:00:00", *pairs[(n + i) % len(pairs)], quantity=1 + i) for i in range(3)]
        if n % 20 == 1:
            lines.append(_pos_line(f"X{n - 1}-0", f"{day} 10:00:00", *pairs[(n - 1) % len(pairs)]))  # re-sent by the till
        if n % 25 == 2:
            lines.append(_pos_line(None, f"{day} 10:00:00"))  # no event_id: rejected row
            lines.append(_pos_line(f"X{n}-bad", f"{day} 10:00:00", quantity="lots"))  # rejected row
        _write_batch(folder, day, 100 + n % 30, lines)
    (folder / "pos_events_20260920_235959_0999.jsonl").write_text('{"event_id": "broken\n')  # unreadable: rejected
    expected = set()
    for path in folder.glob("*.jsonl"):
        try:
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except json.JSONDecodeError:
            continue
        expected |= {r["event_id"] for r in rows if r["event_id"] and str(r["quantity"]).lstrip("-").isdigit()}

    defs = lake.defs
    resources = {"landing": defs.resources["landing"], "lake": defs.resources["lake"]}
    sensor = build_pos_sensor(max_run_bytes=40_000)
    tick = _tick(sensor, None, resources)
    assert 2 <= len(tick.run_requests) <= 4  # 401 batches, ~90 kB: sized by bytes, not 51 runs of 8
    job = defs.resolve_job_def("pos_merge")
    results = [job.execute_in_process(run_config=r.run_config) for r in tick.run_requests]
    assert all(r.success for r in results)
    ledger = lake.read("gold/pos_ledger")
    assert ledger["event_id"].is_unique().all() and set(ledger["event_id"]) == expected
    assert ledger.height == len(expected)
    # Replaying every run inserts nothing and writes no ledger commit.
    version = DeltaTable(lake.table_path("gold/pos_ledger")).version()
    again = job.execute_in_process(run_config=run_config(_requested(tick)))
    [mat] = [m for m in again.asset_materializations_for_node(POSITIONS.to_python_identifier()) if m.asset_key == POSITIONS]
    assert mat.metadata["events_inserted"].value == 0 and mat.metadata["rejected_batches"].value == 1
    assert DeltaTable(lake.table_path("gold/pos_ledger")).version() == version
    streamed = lake.read("gold/inventory_positions").drop("last_updated").sort("store_id", "product_id")

    # The newest batch re-delivered under the same name with one more event: requested again, and
    # only that event is new.
    newest = _requested(tick)[-1]
    redelivered = landing_copy / newest
    time.sleep(0.01)
    redelivered.write_text(redelivered.read_text() + _pos_line("X-late", "2026-09-12 09:00:00", *pairs[0]) + "\n")
    retick = _tick(sensor, tick.cursor, resources)
    assert _requested(retick) == [newest]
    assert job.execute_in_process(run_config=retick.run_requests[0].run_config).success
    ledger = lake.read("gold/pos_ledger")
    assert ledger.height == len(expected) + 1 and ledger["event_id"].is_unique().all()
    assert streamed.height > 0 and streamed["pos_quantity_since"].abs().sum() > 0
    # The streamed positions are the daily recomputation's.
    streamed = lake.read("gold/inventory_positions").drop("last_updated").sort("store_id", "product_id")
    assert lake.run(SNAPSHOTS_THROUGH).success
    assert_frame_equal(lake.read("gold/inventory_positions").drop("last_updated").sort("store_id", "product_id"), streamed)


def test_the_cursor_stays_bounded_as_days_of_batches_accumulate(tmp_path):
    today = [dt.date(2026, 10, 1)]
    folder, landing, lake, tick = _stream(tmp_path, today)
    cursor, sizes = None, []
    for d in range(20):
        today[0] = dt.date(2026, 10, 1) + dt.timedelta(days=d)
        for s in range(24):
            _write_batch(folder, today[0], s, [_pos_line(f"E{d}-{s}", f"{today[0]} 10:00:00")])
        result = tick(cursor)
        # Every batch is requested on the day it lands, once.
        assert len(_requested(result)) == 24 and all(b.startswith(f"pos_events/pos_events_{today[0]:%Y%m%d}") for b in _requested(result))
        apply_batches(lake, landing, _requested(result))
        cursor = result.cursor
        sizes.append(len(cursor))
    state = StreamCursor.from_json(cursor)
    assert state.watermark == dt.date(2026, 10, 20)
    assert {b.split("_")[3] for b in state.seen} == {"20261018", "20261019", "20261020"}  # the late window only
    assert max(sizes[LATE_DAYS:]) - min(sizes[LATE_DAYS:]) < 100  # ~3 days of names, not 20
    assert sizes[-1] < 8_000


def test_a_late_batch_in_the_window_is_picked_up_an_older_one_by_the_next_days_reconciliation(tmp_path):
    today = [dt.date(2026, 10, 10)]
    folder, landing, lake, tick = _stream(tmp_path, today)
    for d in range(10):
        for s in range(3):
            _write_batch(folder, dt.date(2026, 10, 1) + dt.timedelta(days=d), s, [_pos_line(f"E{d}-{s}", "2026-10-01 10:00:00")])
    first = tick(None)
    assert len(_requested(first)) == 30
    apply_batches(lake, landing, _requested(first))

    # Late, inside the window (two days before the newest business date): the next tick takes it.
    late = _write_batch(folder, dt.date(2026, 10, 9), 50, [_pos_line("LATE", "2026-10-09 04:10:00")])
    result = tick(first.cursor)
    assert _requested(result) == [late]
    apply_batches(lake, landing, [late])

    # Older than the window: regular ticks list only the window's dates, so it waits for the
    # reconciliation, once a UTC day, which finds it missing from the ledger.
    too_late = _write_batch(folder, dt.date(2026, 10, 2), 50, [_pos_line("TOO-LATE", "2026-10-02 04:10:00")])
    _write_batch(folder, dt.date(2026, 10, 3), 51, [])  # empty: nothing to merge, never requested
    same_day = tick(result.cursor)
    assert same_day.run_requests == [] and "no new POS batches" in same_day.skip_reason.skip_message
    today[0] += dt.timedelta(days=1)
    reconciled = tick(same_day.cursor)
    assert _requested(reconciled) == [too_late]
    merged = apply_batches(lake, landing, [too_late])
    assert [a.status for a in merged.applied] == ["merged"]
    # Merged, it is the ledger's from now on: the next day's reconciliation asks for nothing.
    today[0] += dt.timedelta(days=1)
    next_day = tick(reconciled.cursor)
    assert _requested(next_day) == []
    assert set(lake.read(LEDGER)["event_id"]) == {f"E{d}-{s}" for d in range(10) for s in range(3)} | {"LATE", "TOO-LATE"}

    # Older than the reconciliation's weeks: only a sensor without a cursor (new, or reset), which
    # compares the whole folder with the ledger, takes it.
    ancient = _write_batch(folder, dt.date(2026, 8, 20), 50, [_pos_line("ANCIENT", "2026-08-20 04:10:00")])
    today[0] += dt.timedelta(days=1)
    assert _requested(tick(next_day.cursor)) == []
    assert _requested(tick(None)) == [ancient]


def test_the_first_designs_cursor_is_kept_as_seen_for_one_tick_then_only_its_window(tmp_path):
    today = [dt.date(2026, 10, 10)]
    folder, _, _, tick = _stream(tmp_path, today)
    batches = [_write_batch(folder, dt.date(2026, 10, 1) + dt.timedelta(days=d), 0, [_pos_line(f"E{d}", "2026-10-01 10:00:00")]) for d in range(10)]
    old = json.dumps({b: fp for b, fp in LocalLandingZone(root=str(tmp_path / "landing")).fingerprints("pos_events").items()})
    new = _write_batch(folder, dt.date(2026, 10, 10), 1, [_pos_line("NEW", "2026-10-10 10:00:00")])
    result = tick(old)
    assert _requested(result) == [new]  # the others were handed out by the old cursor
    assert sorted(StreamCursor.from_json(result.cursor).seen) == [*batches[-3:], new]


def test_a_date_range_is_listed_by_the_fewest_name_prefixes_and_only_its_names(tmp_path):
    assert date_prefixes("pos_events", dt.date(2025, 12, 30), dt.date(2027, 2, 3)) == [
        "pos_events_20251230", "pos_events_20251231", "pos_events_2026", "pos_events_202701", "pos_events_20270201", "pos_events_20270202",
    ]
    folder = tmp_path / "pos_events"
    for day in (dt.date(2026, 9, 30), dt.date(2026, 10, 1), dt.date(2026, 10, 2)):
        _write_batch(folder, day, 0, [])
    (folder / "notes.txt").write_text("x")
    zone = LocalLandingZone(root=str(tmp_path))
    assert [f.name for f in zone.list_dated("pos_events", dt.date(2026, 10, 1), dt.date(2026, 10, 3))] == [
        "pos_events_20261001_000000_0001.jsonl", "pos_events_20261002_000000_0001.jsonl",
    ]
    assert [n for n, _ in zone.list_names("pos_events")] == sorted(p.name for p in folder.iterdir())  # unchanged for other callers


def test_the_adls_landing_zone_lists_one_call_per_name_prefix(monkeypatch):
    from types import SimpleNamespace

    from retail_lakehouse.azure.landing import AzureLandingZone

    blobs = ["pos_events/pos_events_20261001_000000_0001.jsonl", "pos_events/pos_events_20261002_000000_0001.jsonl", "pos_events/other.txt"]
    calls = []

    class Container:
        def list_blobs(self, name_starts_with, include):
            calls.append(name_starts_with)
            return [SimpleNamespace(name=b, etag='"0x1"', size=7, metadata={}) for b in blobs if b.startswith(name_starts_with)]

    monkeypatch.setattr(AzureLandingZone, "_container_client", lambda self: (SimpleNamespace(max_attempts=1), Container()))
    zone = AzureLandingZone(account_name="devstoreaccount1")
    assert [f.name for f in zone.list_dated("pos_events", dt.date(2026, 10, 2), dt.date(2026, 10, 4))] == ["pos_events_20261002_000000_0001.jsonl"]
    assert calls == ["pos_events/pos_events_20261002", "pos_events/pos_events_20261003"]
    assert [n for n, _ in zone.list_names("pos_events")] == [b.split("/")[1] for b in sorted(blobs)]


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
    assert sorted(audit["table"]) == ["inventory_positions", "pos_ledger", "pos_sales_5min"]


def test_the_five_minute_windows_refresh_with_each_stream_run_as_a_rebuild_would(generated_landing, tmp_path):
    lake = make_lake(tmp_path, generated_landing)
    assert lake.run(START, SNAPSHOTS_THROUGH).success
    job = lake.defs.resolve_job_def("pos_merge")
    batches = _batches(generated_landing)
    # Two batches twice: the replay of the second run refreshes the same windows to the same counts.
    for chunk in (batches[:-2], batches[-2:], batches[-2:]):
        result = job.execute_in_process(run_config=run_config(chunk))
        [windows] = result.asset_materializations_for_node(WINDOWS.to_python_identifier())
        assert windows.metadata["mode"].value == "stream"
        table = lake.read("gold/pos_sales_5min")
        # The referee: every window recounted from the whole ledger.
        assert_frame_equal(table.sort("window_start", "store_id", "product_id"), sales_windows_5min(lake.read("gold/pos_ledger")))
    # The last runs rewrote only the windows their two batches touched.
    assert 0 < windows.metadata["windows_refreshed"].value < table.height


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
    # Oldest first: the recompute replaced the table, the stream run merged its two batches into it
    # at once, the recompute again.
    history = DeltaTable(lake.table_path("gold/inventory_positions")).history()
    assert [h["operation"] for h in reversed(history)] == ["WRITE", "MERGE", "WRITE"]
    audit = lake.read("ops/audit_log").filter(pl.col("table") == "inventory_positions")
    assert sorted(audit["run_id"]) == sorted(r.run_id for r in runs)
