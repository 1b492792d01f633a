"""Dagster's instance on a real PostgreSQL, configured by the deployment's own docker/dagster.yaml.

One throwaway cluster on 127.0.0.1 (postgres.py) holds the run, event log and schedule storage. The
code location is served as the deployment serves it (docker/compose.yaml's `code` service:
`dagster code-server start`, and docker/workspace.yaml pointed at it on 127.0.0.1). Into the
instance go (a) a range run of a few days, (b) a tick of the `daily_lakehouse` schedule and (c) an
evaluation of the `landing_zone` sensor, both made and stored by Dagster's own scheduler and sensor
daemon code, one iteration each, over that workspace. A real dagster-webserver on the instance must
then read all three back over GraphQL, and psql must find the rows in Postgres: nothing may fall
back to SQLite files in DAGSTER_HOME.

The daemon's iterations run in this process instead of `dagster-daemon run`: the daemon would also
launch the runs the tick and the sensor request (its queued-run coordinator), which is not what is
tested here and would cost minutes. Without it, Dagster's QueuedRunCoordinator leaves them QUEUED.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.scheduler.instigation import ScheduleInstigatorData
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.sensor import execute_sensor_iteration
from dagster._scheduler.scheduler import launch_scheduled_runs
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from retail_lakehouse.generator import generate
from retail_lakehouse.partitions import RANGE_END_TAG, RANGE_START_TAG
from retail_lakehouse_tests.conftest import TEST_TOKEN_KEY, make_lake
from retail_lakehouse_tests.postgres import Postgres
from retail_lakehouse_tests.processes import stop_group
from retail_lakehouse_tests.webserver import PROJECT_ROOT, Webserver, free_port

DEPLOYMENT_CONFIG = PROJECT_ROOT / "docker" / "dagster.yaml"
DEPLOYMENT_WORKSPACE = PROJECT_ROOT / "docker" / "workspace.yaml"
LOCATION = "retail_lakehouse"
REPOSITORY = "__repository__"  # what Dagster names the repository of a `@dg.definitions` code location
SCHEDULE = "daily_lakehouse"
SENSOR = "landing_zone"
DAYS = 3
CHECKED = (("bronze", "sales_returns"), ("silver", "sales"), ("gold", "fact_sales"))

QUERY = """
query Instance($schedule: ScheduleSelector!, $sensor: SensorSelector!, $assets: [AssetKeyInput!], $facts: AssetKeyInput!) {
  runsOrError { __typename ... on Runs { results { runId status tags { key value } } } }
  assetNodes(assetKeys: $assets) { assetKey { path } partitionStats { numMaterialized numPartitions numFailed numMaterializing } }
  assetOrError(assetKey: $facts) { __typename ... on Asset { assetMaterializations(limit: 100) { partition runId } } }
  scheduleOrError(scheduleSelector: $schedule) {
    __typename ... on Schedule { scheduleState { status ticks(limit: 10) { status timestamp runIds } } }
  }
  sensorOrError(sensorSelector: $sensor) {
    __typename ... on Sensor { sensorState { status ticks(limit: 10) { status runIds cursor } } }
  }
}
"""


def _latest_0200(now: dt.datetime) -> dt.datetime:
    """The schedule's most recent execution time (02:00 UTC) at or before `now`."""
    tick = now.replace(hour=2, minute=0, second=0, microsecond=0)
    return tick if tick <= now else tick - dt.timedelta(days=1)


@contextlib.contextmanager
def _code_server(port: int, log: Path, startup_timeout: float = 90.0):
    """docker/compose.yaml's `code` service on 127.0.0.1:`port`, stopped by its own process group."""
    executable = os.path.join(os.path.dirname(sys.executable), "dagster")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [executable, "code-server", "start", "-h", "127.0.0.1", "-p", str(port),
             "-m", "retail_lakehouse.definitions", "-a", "defs", "--location-name", LOCATION],
            cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + startup_timeout
        while True:  # it listens once the definitions are loaded
            if proc.poll() is not None:
                raise RuntimeError(f"the code server exited with code {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the code server did not listen within {startup_timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}") from None
                time.sleep(0.25)
        yield
    finally:
        stop_group(proc, timeout=20)


def _workspace(path: Path, port: int) -> Path:
    """docker/workspace.yaml, its gRPC server moved to 127.0.0.1:`port`."""
    workspace = yaml.safe_load(DEPLOYMENT_WORKSPACE.read_text())
    [entry] = workspace["load_from"]
    assert entry["grpc_server"]["location_name"] == LOCATION, entry
    entry["grpc_server"].update(host="127.0.0.1", port=port)
    path.write_text(yaml.safe_dump(workspace))
    return path


def _tick_schedule_and_sensor_once(instance: dg.DagsterInstance, workspace_file: Path, now: dt.datetime, tick_time: dt.datetime) -> None:
    """One iteration of Dagster's scheduler and sensor daemons over the deployment's workspace."""
    log = logging.getLogger("retail_lakehouse_tests.daemon")
    with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace_file)])) as workspace:
        repository = workspace.create_request_context().get_code_location(LOCATION).get_repository(REPOSITORY)
        schedule, sensor = repository.get_schedule(SCHEDULE), repository.get_sensor(SENSOR)
        # Started an hour before the latest 02:00, as in a deployment that has been up since then: the
        # scheduler owes that tick now (a schedule started just now would tick at the next 02:00).
        state = instance.start_schedule(schedule)
        instance.update_instigator_state(state.with_data(
            ScheduleInstigatorData(schedule.cron_schedule, start_timestamp=(tick_time - dt.timedelta(hours=1)).timestamp())
        ))
        instance.start_sensor(sensor)
        errors = [e for e in launch_scheduled_runs(workspace, log, end_datetime_utc=now, iteration_times={}) if e]
        errors += [e for e in execute_sensor_iteration(workspace, log, None, None) if e]
    assert not errors, errors


def _rows(pg: Postgres, sql: str) -> list[list[str]]:
    return [line.split("|") for line in pg.psql(sql).splitlines() if line]


def test_runs_ticks_and_sensor_evaluations_live_in_postgres_and_the_ui_reads_them(tmp_path, monkeypatch):
    for deployed in (DEPLOYMENT_CONFIG, DEPLOYMENT_WORKSPACE):
        assert deployed.exists(), f"{deployed} (the deployment's instance and workspace) is missing"
    now = dt.datetime.now(dt.timezone.utc)
    tick_time = _latest_0200(now)
    # The partitions start a few days back, so the tick's late-data window (yesterday and the 30 days
    # before it, clipped to the first partition) stays a few days long.
    start = now.date() - dt.timedelta(days=DAYS + 1)
    first, last = start, start + dt.timedelta(days=DAYS - 1)
    tick_day = tick_time.date() - dt.timedelta(days=1)
    landing = tmp_path / "landing"
    generate(landing, start, DAYS, seed=7, scale=0.02)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOYMENT_CONFIG, home / "dagster.yaml")

    with Postgres() as pg, contextlib.ExitStack() as stack:
        lake = make_lake(tmp_path, landing, start=start)
        env = {"DAGSTER_HOME": str(home), "DAGSTER_POSTGRES_URL": pg.url, "RETAIL_LAKEHOUSE_LAKE_ROOT": str(lake.settings.lake_root),
               "RETAIL_LAKEHOUSE_LANDING_ROOT": str(landing), "RETAIL_LAKEHOUSE_TOKEN_KEY": TEST_TOKEN_KEY,
               "RETAIL_LAKEHOUSE_START_DATE": start.isoformat(),
               # As docker/compose.yaml's `code` service, where runs execute: batched materializations.
               "DAGSTER_EVENT_BATCH_SIZE": "200"}
        for name, value in env.items():  # the code server and the webserver inherit them
            monkeypatch.setenv(name, value)
        port = free_port()
        stack.enter_context(_code_server(port, tmp_path / "code-server.log"))
        workspace = _workspace(tmp_path / "workspace.yaml", port)
        web = Webserver(dict(os.environ), log=tmp_path / "webserver.log", workspace=workspace).launch()  # loads meanwhile
        stack.callback(web.stop)

        with dg.DagsterInstance.get() as instance:
            assert isinstance(instance.run_storage, PostgresRunStorage)
            assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
            assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
            # (b) and (c): a schedule tick and a sensor evaluation, by Dagster's daemon code. Each
            # queues a run, whose planned partitions Dagster counts as "materializing" until a later
            # materialization of the partition: so they come first, and the range run after them.
            _tick_schedule_and_sensor_once(instance, workspace, now, tick_time)
            # (a) a range run, in this process as run_range does for the CLI.
            result = lake.run(first, last, instance=instance)
            assert result.success
            materializations = len(result.get_asset_materialization_events())
        partitions = len(lake.defs.resolve_assets_def(dg.AssetKey(["gold", "fact_sales"])).partitions_def.get_partition_keys())

        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
        web.wait_until_ready()
        answer = web.graphql(QUERY, {
            "schedule": {**selector, "scheduleName": SCHEDULE}, "sensor": {**selector, "sensorName": SENSOR},
            "assets": [{"path": list(p)} for p in CHECKED], "facts": {"path": ["gold", "fact_sales"]},
        })
        assert "errors" not in answer, answer["errors"]
        data = answer["data"]

        # The runs: the range run succeeded; the tick's and the sensor's runs wait in the queue.
        runs = {r["runId"]: (r["status"], {t["key"]: t["value"] for t in r["tags"]}) for r in data["runsOrError"]["results"]}
        assert len(runs) == 3, runs
        assert runs[result.run_id][0] == "SUCCESS"
        assert (runs[result.run_id][1][RANGE_START_TAG], runs[result.run_id][1][RANGE_END_TAG]) == (first.isoformat(), last.isoformat())
        by_origin = {tags.get("dagster/schedule_name") or tags.get("dagster/sensor_name"): (run_id, status, tags)
                     for run_id, (status, tags) in runs.items() if run_id != result.run_id}
        assert set(by_origin) == {SCHEDULE, SENSOR}, runs
        schedule_run, status, tags = by_origin[SCHEDULE]
        assert status == "QUEUED"
        assert (tags[RANGE_START_TAG], tags[RANGE_END_TAG]) == (start.isoformat(), tick_day.isoformat())
        sensor_run, status, tags = by_origin[SENSOR]
        assert status == "QUEUED"
        assert (tags[RANGE_START_TAG], tags[RANGE_END_TAG]) == (first.isoformat(), last.isoformat())

        # The materializations: DAYS partitions of every checked asset, all from the range run; the
        # tick's day, if it is past them, is still planned by the queued run, hence materializing.
        queued_only = (tick_day - last).days if tick_day > last else 0
        stats = {tuple(n["assetKey"]["path"]): n["partitionStats"] for n in data["assetNodes"]}
        assert stats == {p: {"numMaterialized": DAYS, "numPartitions": partitions, "numFailed": 0, "numMaterializing": queued_only} for p in CHECKED}
        facts = data["assetOrError"]["assetMaterializations"]
        assert sorted(m["partition"] for m in facts) == [(first + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
        assert {m["runId"] for m in facts} == {result.run_id}

        # The schedule's tick: the latest 02:00, successful, with its run.
        state = data["scheduleOrError"]["scheduleState"]
        assert state["status"] == "RUNNING"
        assert [(t["status"], t["timestamp"], t["runIds"]) for t in state["ticks"]] == [("SUCCESS", tick_time.timestamp(), [schedule_run])]

        # The sensor's evaluation: successful, with its run and a cursor naming every drop of the days.
        state = data["sensorOrError"]["sensorState"]
        assert state["status"] == "RUNNING"
        assert [(t["status"], t["runIds"]) for t in state["ticks"]] == [("SUCCESS", [sensor_run])]
        cursor = json.loads(state["ticks"][0]["cursor"])
        assert cursor and all((landing / path).is_file() for path in cursor)
        days = {dt.datetime.strptime(m.group(1), "%Y%m%d").date() for m in (re.search(r"_(\d{8})_", p) for p in cursor) if m}
        assert days == {first + dt.timedelta(days=i) for i in range(DAYS)}

        # The same rows, read from Postgres itself.
        assert sorted(_rows(pg, "SELECT run_id, status FROM runs")) == sorted(
            [[result.run_id, "SUCCESS"], [schedule_run, "QUEUED"], [sensor_run, "QUEUED"]]
        )
        stored = _rows(pg, f"SELECT count(*) FROM event_logs WHERE run_id = '{result.run_id}' AND dagster_event_type = 'ASSET_MATERIALIZATION'")
        assert stored == [[str(materializations)]]
        assert int(_rows(pg, "SELECT count(*) FROM event_logs")[0][0]) > materializations
        ticks = {(kind, status): int(n) for kind, status, n in _rows(pg, "SELECT type, status, count(*) FROM job_ticks GROUP BY 1, 2")}
        assert ticks.get(("SCHEDULE", "SUCCESS")) == 1 and ticks.get(("SENSOR", "SUCCESS")) == 1, ticks
        assert not sorted(home.rglob("*.db")), "part of the instance went to SQLite"
