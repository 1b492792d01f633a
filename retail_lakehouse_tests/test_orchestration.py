"""Schedule and sensor behaviour, evaluated the way the daemon evaluates them."""

import datetime as dt
import os
import time

import dagster as dg

from retail_lakehouse.landing import LocalLandingZone
from retail_lakehouse.orchestration import RANGE_END_TAG, RANGE_START_TAG
from retail_lakehouse_tests.conftest import START, make_lake


def test_daily_schedule_runs_at_two_utc_for_yesterday_and_its_late_window(tmp_path):
    lake = make_lake(tmp_path, tmp_path / "landing")
    schedule = lake.defs.resolve_schedule_def("daily_lakehouse")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    at = dt.datetime(2026, 10, 20, 2, 0, tzinfo=dt.timezone.utc)
    [request] = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=at)).run_requests
    assert request.tags[RANGE_END_TAG] == "2026-10-19"
    assert request.tags[RANGE_START_TAG] == "2026-09-19"  # 30 days of returns and refunds before it


def test_daily_schedule_clips_the_window_at_the_first_partition(tmp_path):
    lake = make_lake(tmp_path, tmp_path / "landing")
    schedule = lake.defs.resolve_schedule_def("daily_lakehouse")
    at = dt.datetime(2026, 9, 4, 2, 0, tzinfo=dt.timezone.utc)
    [request] = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=at)).run_requests
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (START.isoformat(), "2026-09-03")


def _write(landing, source, name, text):
    folder = landing / source
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def _tick(sensor, landing, cursor):
    context = dg.build_sensor_context(cursor=cursor, resources={"landing": LocalLandingZone(root=str(landing))})
    return sensor(context)


def test_landing_sensor_requests_new_drops_once_and_reprocesses_a_corrected_one(tmp_path):
    landing = tmp_path / "landing"
    lake = make_lake(tmp_path, landing)
    sensor = lake.defs.resolve_sensor_def("landing_zone")

    first = _tick(sensor, landing, None)
    assert first.run_requests == [] and first.skip_reason is not None

    path = _write(landing, "loyalty", "loyalty_20261010_230000.csv", "event_id\n1\n")
    _write(landing, "customer", "customer_20261012_230000.csv", "customer_id\n1\n")
    _write(landing, "loyalty", "not_a_drop.csv", "x\n")
    result = _tick(sensor, landing, first.cursor)
    [request] = result.run_requests
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2026-09-10", "2026-10-12")

    unchanged = _tick(sensor, landing, result.cursor)
    assert unchanged.run_requests == []

    # A corrected drop under the same name: new content, new fingerprint, processed again.
    time.sleep(0.01)
    path.write_text("event_id\n1\n2\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    corrected = _tick(sensor, landing, unchanged.cursor)
    [again] = corrected.run_requests
    assert (again.tags[RANGE_START_TAG], again.tags[RANGE_END_TAG]) == ("2026-09-10", "2026-10-10")
    assert again.run_key != request.run_key

    # The cursor never forgets a file: nothing more to do on the next tick.
    assert _tick(sensor, landing, corrected.cursor).run_requests == []


def test_a_range_outside_the_partitions_is_refused_with_the_valid_span(tmp_path):
    import pytest

    from retail_lakehouse.orchestration import run_range

    lake = make_lake(tmp_path, tmp_path / "landing")
    yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    span = rf"partitions run from 2026-09-01 to {yesterday} \(yesterday, UTC\); pick days in that range"
    with pytest.raises(ValueError, match=rf"^no daily partition 2026-08-31: {span}$"):
        run_range(lake.defs, dt.date(2026, 8, 31), dt.date(2026, 9, 2))
    tomorrow = yesterday + dt.timedelta(days=2)
    with pytest.raises(ValueError, match=rf"^no daily partition {tomorrow}: {span}$"):
        run_range(lake.defs, dt.date(2026, 9, 1), tomorrow)
    with pytest.raises(ValueError, match=r"--partition-range 2026-09-01\.\.\.2026-09-02$"):
        run_range(lake.defs, dt.date(2026, 9, 2), dt.date(2026, 9, 1))
