"""Alerts: a failed run, a failed blocking check, a freshness breach, low stock.

Every alert goes to the log; with `RETAIL_LAKEHOUSE_ALERT_WEBHOOK` set it is also POSTed there as
JSON. The payload's `text` is what Slack and Microsoft Teams incoming webhooks display; the other
fields (`kind`, `asset`, `partition`, `reason`, `run_id`, `details`) are for any other receiver.
A webhook that fails is logged and never fails the run or the sensor that raised the alert.

Failed runs and failed checks are found by run-status sensors, after the run, from the events
Dagster stored (so the alert says what the UI shows). Only ERROR-severity check failures alert: a
failed WARN check reports drift, which the UI shows, and would alert every day on real data.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field

import dagster as dg

from retail_lakehouse.partitions import RANGE_END_TAG, RANGE_START_TAG
from retail_lakehouse.quality.policy import PARTITION_FRESHNESS
from retail_lakehouse.redaction import redact

RUN_FAILURE, CHECK_FAILURE, FRESHNESS_BREACH, LOW_STOCK = "run_failure", "check_failure", "freshness_breach", "low_stock"

@dataclass(frozen=True)
class Alert:
    kind: str
    asset: str | None
    partition: str | None
    reason: str
    run_id: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        where = " ".join(x for x in (self.asset, f"[{self.partition}]" if self.partition else None) if x)
        return f"retail_lakehouse {self.kind}: {where + ': ' if where else ''}{self.reason}"

    def payload(self) -> dict:
        return {"text": self.text, **asdict(self)}


class AlertSink(dg.ConfigurableResource):
    """Where alerts go besides the log: a webhook URL (it may hold a token: given as an EnvVar)."""

    webhook_url: str = ""

    def send(self, alerts: Iterable[Alert], log: Callable[[str], None]) -> None:
        for alert in alerts:
            log(f"ALERT {alert.text}")
            if self.webhook_url:
                self._post(alert, log)

    def _post(self, alert: Alert, log: Callable[[str], None]) -> None:
        request = urllib.request.Request(
            self.webhook_url, data=json.dumps(alert.payload(), default=str).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5):
                pass
        except OSError as err:
            # The URL is not logged: a Slack or Teams webhook URL is itself the credential.
            log(f"alert webhook failed ({type(err).__name__}): the {alert.kind} alert reached the log only")


def run_window(run: dg.DagsterRun) -> str | None:
    """The partition(s) a run covered, as the UI names them."""
    first, last = run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)
    if first and last:
        return first if first == last else f"{first}...{last}"
    return run.tags.get("dagster/partition")


def run_failure_alerts(
    run: dg.DagsterRun, step_failures: Iterable[dg.DagsterEvent], message: str | None, assets_of_step: Mapping[str, list[str]]
) -> list[Alert]:
    """One alert per failed step (its asset, the run's window, the error), or one for the run."""
    alerts = []
    for event in step_failures:
        error = getattr(event.event_specific_data, "error", None)
        # Dagster wraps the error (retries exhausted, user-code boundary); the cause is what to fix.
        while error is not None and error.cause is not None:
            error = error.cause
        reason = f"{error.cls_name}: {error.message.strip()}" if error else (event.message or "step failed")
        assets = assets_of_step.get(event.step_key or "", [])
        alerts.append(Alert(
            RUN_FAILURE, assets[0] if assets else event.step_key, run_window(run), redact(reason), run.run_id,
            {"job": run.job_name, "step": event.step_key, "assets": assets},
        ))
    return alerts or [Alert(RUN_FAILURE, None, run_window(run), redact(message or "run failed"), run.run_id, {"job": run.job_name})]


def _assets_of_steps(instance: dg.DagsterInstance, run_id: str) -> dict[str, list[str]]:
    """The assets each step of the run was to materialize (a multi-asset step has several)."""
    found: dict[str, set[str]] = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED):
        event = record.dagster_event
        found.setdefault(event.step_key, set()).add(event.asset_key.to_user_string())
    return {step: sorted(keys) for step, keys in found.items()}


def check_alerts(run: dg.DagsterRun, evaluations: Iterable[dg.AssetCheckEvaluation]) -> list[Alert]:
    """An alert per failed ERROR check of the run: a freshness breach, or a (blocking) check failure."""
    alerts = []
    for ev in evaluations:
        if ev.passed or ev.severity != dg.AssetCheckSeverity.ERROR:
            continue
        failed_days = ev.metadata.get("failed_days")
        partition = ev.partition or (failed_days.value if failed_days is not None else None) or run_window(run)
        kind = FRESHNESS_BREACH if ev.check_name == PARTITION_FRESHNESS else CHECK_FAILURE
        reason = f"{ev.check_name} {ev.description or 'failed'}"
        if kind == FRESHNESS_BREACH and "newest_partition" in ev.metadata:
            newest, hours = ev.metadata["newest_partition"].value, ev.metadata["hours_since_partition_end"].value
            reason = f"{ev.check_name}: " + (f"newest partition {newest}, {hours} h after its day ended" if hours >= 0 else "no partition materialized yet")
        alerts.append(Alert(kind, ev.asset_key.to_user_string(), partition, redact(reason), run.run_id, {"check": ev.check_name}))
    return alerts


def _evaluations(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    return [e.dagster_event.event_specific_data for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]


def build_alert_sensors() -> list[dg.SensorDefinition]:
    @dg.run_failure_sensor(name="alert_on_run_failure", default_status=dg.DefaultSensorStatus.RUNNING)
    def alert_on_run_failure(context: dg.RunFailureSensorContext, alerts: AlertSink):
        """A failed run: an alert per failed step, and one per failed ERROR check it had evaluated."""
        run = context.dagster_run
        found = run_failure_alerts(run, context.get_step_failure_events(), context.failure_event.message, _assets_of_steps(context.instance, run.run_id))
        alerts.send([*found, *check_alerts(run, _evaluations(context.instance, run.run_id))], context.log.error)

    @dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, name="alert_on_failed_checks", default_status=dg.DefaultSensorStatus.RUNNING)
    def alert_on_failed_checks(context: dg.RunStatusSensorContext, alerts: AlertSink):
        """A run that succeeded with failed ERROR checks: days a blocking gate withheld, a freshness breach."""
        run = context.dagster_run
        alerts.send(check_alerts(run, _evaluations(context.instance, run.run_id)), context.log.error)

    return [alert_on_run_failure, alert_on_failed_checks]
