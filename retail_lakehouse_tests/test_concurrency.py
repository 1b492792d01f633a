"""Two runs over the same tables at once: the second waits for the first, or fails in one line."""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import types

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retail_lakehouse.locks import LOCK_FILE_NAME, LakeBusyError, LakeLock, lake_lock_for_run
from retail_lakehouse_tests.conftest import START, make_lake

DAGSTER = os.path.join(os.path.dirname(sys.executable), "dagster")
DAYS = 6
# The key conftest.make_lake writes to its key file, so the clean run tokenizes cards alike.
TOKEN_KEY = "test-card-token-key-not-a-secret"
VOLATILE = {"load_timestamp", "_ingested_at"}
MEDALLION = "group:bronze or group:silver or group:gold"

HOLDER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from retail_lakehouse.locks import LakeLock
    lock = LakeLock(Path(sys.argv[1]), "the test lake")
    lock.acquire({"run_id": "holder-run", "job": "test", "pid": os.getpid(), "host": "here"})
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


def _hold(path, seconds: float) -> subprocess.Popen:
    """A separate process that holds the lock on `path` for `seconds`, started once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_waits_for_the_holder_and_times_out_naming_it(tmp_path):
    path = tmp_path / "lake" / LOCK_FILE_NAME
    holder = _hold(path, 2.0)
    try:
        with pytest.raises(LakeBusyError) as busy:
            LakeLock(path, "the test lake", timeout=0.3, poll=0.05).acquire({"run_id": "second"})
        message = str(busy.value)
        assert "\n" not in message
        assert message.startswith(f"the test lake is still being written by run holder-run (job test, pid {holder.pid} on here")
        assert message.endswith("after 0.3 s: let that run finish (or stop it), then start this one again")
        with pytest.raises(LakeBusyError, match=r"^the test lake is being written by run holder-run \(job test, pid \d+ on here\): let"):
            LakeLock(path, "the test lake", timeout=0).acquire({"run_id": "second"})

        waits = []
        lock = LakeLock(path, "the test lake", timeout=30, poll=0.05)
        lock.acquire({"run_id": "second"}, on_wait=waits.append)
        # Only once the holder has gone, and it said whom it waited for, once.
        assert holder.poll() is not None
        assert len(waits) == 1 and "waiting for run holder-run" in waits[0]
        assert json.loads(path.read_text()) == {"run_id": "second"}
        lock.release()
        assert path.read_text() == ""
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_releases_the_lock_at_once(tmp_path):
    path = tmp_path / "lake" / LOCK_FILE_NAME
    holder = _hold(path, 600)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with LakeLock(path, "the test lake", timeout=2, poll=0.05) as lock:
        assert lock.held


def _context(run_id: str):
    return types.SimpleNamespace(run=dg.DagsterRun(job_name="lakehouse", run_id=run_id), log=None)


def test_a_run_holds_the_lake_once_however_often_its_resources_set_up_and_others_fail_without_retry(tmp_path):
    path = tmp_path / "lake" / LOCK_FILE_NAME
    with lake_lock_for_run(path, "the test lake", _context("run-1")):
        # The same run again (a resource nested in another and bound at top level): no self-wait.
        with lake_lock_for_run(path, "the test lake", _context("run-1"), timeout=0.2):
            pass
        with pytest.raises(dg.Failure) as failure, lake_lock_for_run(path, "the test lake", _context("run-2"), timeout=0.2):
            pass
        assert failure.value.allow_retries is False
        assert failure.value.description.startswith("the test lake is still being written by run run-1 (job lakehouse, pid ")
        assert json.loads(path.read_text())["run_id"] == "run-1"
    with LakeLock(path, "the test lake", timeout=0.2):
        pass
    with lake_lock_for_run(path, "the test lake", types.SimpleNamespace(run=None, log=None)):
        pass


@pytest.fixture(scope="module")
def drops(tmp_path_factory):
    from retail_lakehouse.generator import generate

    out = tmp_path_factory.mktemp("landing")
    generate(out, START, DAYS, seed=7, scale=0.02)
    return out


def _env(tmp_path, landing, lake) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "RETAIL_LAKEHOUSE_LANDING_ROOT": str(landing),
        "RETAIL_LAKEHOUSE_LAKE_ROOT": str(lake),
        "RETAIL_LAKEHOUSE_START_DATE": START.isoformat(),
        "RETAIL_LAKEHOUSE_TOKEN_KEY": TOKEN_KEY,
    }


def _backfill(env, first: dt.date, last: dt.date, *extra: str) -> subprocess.Popen:
    cmd = [DAGSTER, "asset", "materialize", "-m", "retail_lakehouse.definitions", "--select", MEDALLION,
           "--partition-range", f"{first}...{last}", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _tables(root) -> dict[str, pl.DataFrame]:
    out = {}
    for log in sorted(root.glob("*/*/_delta_log")):
        table = log.parent
        if table.parent.name == "ops":
            continue
        frame = pl.read_delta(str(table))
        frame = frame.drop([c for c in frame.columns if c in VOLATILE])
        out[f"{table.parent.name}/{table.name}"] = frame.sort(frame.columns, nulls_last=True)
    return out


def test_two_overlapping_cli_backfills_at_once_take_turns_and_leave_the_tables_of_one_clean_run(drops, tmp_path):
    lake = tmp_path / "cli" / "lakehouse"
    env = _env(tmp_path, drops, lake)
    # The first day holds the customer base; loaded first, so that a window without it passes the
    # orphan gate whichever of the two runs gets the lake first.
    first = _backfill(env, START, START)
    out_first = first.communicate(timeout=300)[0]
    assert first.returncode == 0, out_first[-3000:]
    # Nested windows, so that either order of the two is one clean run: a window never re-derives
    # the days before it, so runs over 1-4 then 3-6 would miss returns of days 1-2 delivered on
    # days 5-6, however they were serialized.
    a = _backfill(env, START, START + dt.timedelta(days=DAYS - 1))
    b = _backfill(env, START + dt.timedelta(days=1), START + dt.timedelta(days=DAYS - 2))
    out_a, out_b = a.communicate(timeout=300)[0], b.communicate(timeout=300)[0]
    assert a.returncode == 0, out_a[-3000:]
    assert b.returncode == 0, out_b[-3000:]
    assert "STEP_UP_FOR_RETRY" not in out_a + out_b

    # One of them waited for the other, said so, and wrote nothing until the other had finished.
    audit = pl.read_delta(str(lake / "ops" / "audit_log"))
    first_run = audit.sort("timestamp")["run_id"][0]
    spans = (
        audit.filter(pl.col("run_id") != first_run)
        .group_by("run_id").agg(pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last")).sort("first")
    )
    assert spans.height == 2
    assert spans["last"][0] < spans["first"][1], spans
    waited = out_b if spans["run_id"][1] in out_b else out_a
    assert f"waiting for run {spans['run_id'][0]}" in waited

    clean = make_lake(tmp_path / "clean", drops)
    assert clean.run(START, START + dt.timedelta(days=DAYS - 1)).success
    got, expected = _tables(lake), _tables(tmp_path / "clean" / "lakehouse")
    assert got.keys() == expected.keys() and len(got) > 20
    for name, frame in expected.items():
        try:
            assert_frame_equal(got[name], frame, check_row_order=True)
        except AssertionError as err:
            raise AssertionError(f"{name}: {err}") from None


def test_a_backfill_that_cannot_get_the_lake_in_time_fails_in_one_line_and_writes_nothing(drops, tmp_path):
    lake = tmp_path / "lakehouse"
    holder = _hold(lake / LOCK_FILE_NAME, 600)
    try:
        env = {**_env(tmp_path, drops, lake), "RETAIL_LAKEHOUSE_LOCK_TIMEOUT": "1"}
        proc = _backfill(env, START, START + dt.timedelta(days=2))
        output = proc.communicate(timeout=120)[0]
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode != 0
    assert (
        f"the lakehouse at {lake} is still being written by run holder-run (job test, pid {holder.pid} on here) "
        "after 1 s: let that run finish (or stop it), then start this one again"
    ) in output
    assert "STEP_START" not in output and "STEP_UP_FOR_RETRY" not in output
    assert not list(lake.rglob("_delta_log"))
