"""Each alert kind reaches a real HTTP receiver with the asset, the partition and the reason.

The receiver is a local HTTP server that records what it is sent, standing in for a Slack or Teams
incoming webhook. Faults are real: a day of broken sales lines, a deleted data file, stale data,
stock below its reorder point. The run-status sensors are evaluated the way the daemon does, on the
runs the instance stored.
"""

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable

from retail_lakehouse.alerts import Alert, AlertSink
from retail_lakehouse.redaction import redact
from retail_lakehouse.quality import policy as p
from retail_lakehouse.quality.freshness import FRESHNESS_JOB
from retail_lakehouse.stream.sensor import POS_JOB, run_config
from retail_lakehouse_tests.conftest import START, make_lake


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?token=secret-in-the-url"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def of_kind(self, kind: str) -> list[dict]:
        return [a for a in self.received if a["kind"] == kind]


@pytest.fixture
def receiver(monkeypatch):
    with Receiver() as r:
        monkeypatch.setenv("RETAIL_LAKEHOUSE_ALERT_WEBHOOK", r.url)
        yield r


def _run_sensors(lake, instance: dg.DagsterInstance, run_id: str) -> None:
    """What the daemon does when a run ends: the sensors watching its final status see it."""
    run = instance.get_run_by_id(run_id)
    resources = {"alerts": lake.defs.resources["alerts"]}
    if run.status == dg.DagsterRunStatus.FAILURE:
        [event] = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        sensor = lake.defs.resolve_sensor_def("alert_on_run_failure")
        context = dg.build_run_status_sensor_context("alert_on_run_failure", event.dagster_event, instance, run, resources=resources).for_run_failure()
    else:
        [event] = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)
        sensor = lake.defs.resolve_sensor_def("alert_on_failed_checks")
        context = dg.build_run_status_sensor_context("alert_on_failed_checks", event.dagster_event, instance, run, resources=resources)
    sensor(context)


def _landing_with_a_broken_day(root: Path, bad_day: dt.date) -> Path:
    from retail_lakehouse.generator import generate

    landing = root / "landing"
    generate(landing, START, 6, seed=3, scale=0.1)
    [path] = sorted((landing / "sales_returns").glob(f"sales_returns_{bad_day:%Y%m%d}_*.csv"))
    pl.read_csv(path, infer_schema=False).with_columns(pl.lit("-1").alias("quantity")).write_csv(path)
    return landing


def test_every_alert_kind_reaches_the_webhook_with_asset_partition_and_reason(tmp_path, receiver):
    bad_day = START + dt.timedelta(days=3)
    lake = make_lake(tmp_path, _landing_with_a_broken_day(tmp_path, bad_day), alert_webhook_from_env=True)
    with dg.DagsterInstance.ephemeral() as instance:
        # Three good days reach gold; then a 6-day run where the blocking gate withholds the broken day.
        assert lake.run(START, START + dt.timedelta(days=2), instance=instance).success
        window = lake.run(START, START + dt.timedelta(days=5), instance=instance, raise_on_error=False)
        _run_sensors(lake, instance, window.run_id)
        [gate] = [a for a in receiver.of_kind("check_failure") if a["details"]["check"] == p.QUARANTINE_WITHIN_LIMIT]
        assert gate["asset"] == "silver/sales" and gate["partition"] == bad_day.isoformat()
        assert gate["run_id"] == window.run_id and bad_day.isoformat() in gate["reason"]
        assert gate["text"].startswith("retail_lakehouse check_failure: silver/sales [")
        # Gold was held back, so the run failed: that is a run-failure alert on the gated step too.
        [held] = receiver.of_kind("run_failure")
        assert held["asset"] == "silver/sales" and held["run_id"] == window.run_id and "quarantine_within_limit" in held["reason"]
        # Low stock from the stream: the morning after the last snapshot, a rush on one product
        # empties its shelf; the merge run raises the alert.
        pair = lake.read("gold/inventory_positions").filter(~pl.col("is_below_reorder_point") & (pl.col("reorder_point") > 0)).row(0, named=True)
        morning = START + dt.timedelta(days=6)
        rush = lake.landing / "pos_events" / f"pos_events_{morning:%Y%m%d}_090000_0001.jsonl"
        rush.write_text(json.dumps({"event_id": "POS-RUSH-1", "event_ts": f"{morning} 09:00:00",
                                    "store_id": pair["store_id"], "product_id": pair["product_id"], "quantity": pair["quantity_on_hand"]}) + "\n")
        merge = lake.defs.resolve_job_def(POS_JOB).execute_in_process(run_config=run_config([f"pos_events/{rush.name}"]), instance=instance)
        [low] = receiver.of_kind("low_stock")
        assert low["asset"] == "gold/inventory_positions" and low["run_id"] == merge.run_id
        assert low["details"]["pairs"] == [{"store_id": pair["store_id"], "product_id": pair["product_id"], "quantity_on_hand": 0, "reorder_point": pair["reorder_point"]}]
        # The data ends in September: every daily table breaches its freshness SLA.
        fresh = lake.defs.resolve_job_def(FRESHNESS_JOB).execute_in_process(instance=instance)
        _run_sensors(lake, instance, fresh.run_id)
        breaches = {a["asset"]: a for a in receiver.of_kind("freshness_breach")}
        assert "gold/agg_daily_sales" in breaches and len(breaches) == len(p.FRESHNESS_CHECKED)
        newest = (START + dt.timedelta(days=2)).isoformat()
        assert f"newest partition {newest}" in breaches["gold/fact_sales"]["reason"]
        # A run that fails: a data file of silver/sales is gone when gold reads it.
        Path(DeltaTable(lake.table_path("silver/sales")).file_uris()[0].removeprefix("file://")).unlink()
        failed = lake.run(START, START + dt.timedelta(days=5), selection=dg.AssetSelection.assets(["gold", "fact_sales"]), instance=instance, raise_on_error=False)
        assert not failed.success
        _run_sensors(lake, instance, failed.run_id)
        [crash] = [a for a in receiver.of_kind("run_failure") if a["run_id"] == failed.run_id]
        assert crash["asset"] == "gold/fact_sales" and crash["partition"] == f"{START}...{START + dt.timedelta(days=5)}"
        assert "parquet" in crash["reason"].lower()
    # The webhook URL (a credential for Slack and Teams) is never part of what was sent.
    assert "secret-in-the-url" not in json.dumps(receiver.received)


def test_a_webhook_that_fails_leaves_the_alert_in_the_log_and_names_no_url():
    logged = []
    AlertSink(webhook_url="http://127.0.0.1:9/hook?token=abc").send([Alert("run_failure", "gold/fact_sales", "2026-09-01", "boom")], logged.append)
    assert logged[0] == "ALERT retail_lakehouse run_failure: gold/fact_sales [2026-09-01]: boom"
    assert "webhook failed" in logged[1] and "token=abc" not in logged[1] and "127.0.0.1" not in logged[1]


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("https://acct.blob.core.windows.net/c?sv=2024&sig=AbC%2F123&se=x", "https://acct.blob.core.windows.net/c?sv=2024&sig=***&se=x"),
        ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=s3cr3t==;", "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=***;"),
        ("could not connect to postgresql://bi:hunter2@db:5432/gold", "could not connect to postgresql://bi:***@db:5432/gold"),
        ("bad line: 4111 1111 1111 1111,2026-09-01", "bad line: [card ####1111],2026-09-01"),
    ],
)
def test_credentials_in_error_messages_are_redacted(raw, shown):
    assert redact(raw) == shown
