"""`make demo`: generate the demo drops (once), materialize every asset for every demo day in one
run on the demo instance, and print what was built.

The demo's days are the 61 that end yesterday (UTC), so that in the UI every daily partition up to
yesterday is materialized, the freshness checks pass, and the 02:00 schedule has a new day to run
tomorrow. The first day is written to `data/demo.env` (`RETAIL_LAKEHOUSE_START_DATE`), which the
Makefile reads, so `make ui` and later `make demo` runs see the same partitions as the drops.
"""

import dataclasses
import datetime as dt
import os
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl

from retail_lakehouse.definitions import build_defs
from retail_lakehouse.landing import LocalLandingZone
from retail_lakehouse.orchestration import run_range
from retail_lakehouse.settings import DEMO_DAYS, Settings
from retail_lakehouse.storage import table_exists
from retail_lakehouse.stream.rules import POS_SOURCE, batches_of, plan_runs
from retail_lakehouse.stream.sensor import POS_JOB, run_config

DEMO_SEED = 42
DEMO_SCALE = 0.1
DEMO_ENV = Path("data/demo.env")


def demo_window(today: dt.date) -> tuple[dt.date, dt.date]:
    """The demo's first and last day: the DEMO_DAYS days that end the day before `today`."""
    last = today - dt.timedelta(days=1)
    return last - dt.timedelta(days=DEMO_DAYS - 1), last


def main(today: dt.date | None = None, env_file: Path = DEMO_ENV) -> int:
    from retail_lakehouse.generator import generate

    settings = Settings.from_env()
    if not settings.landing_root.exists() or not any(settings.landing_root.iterdir()):
        first, last = demo_window(today or dt.datetime.now(dt.UTC).date())
        settings = dataclasses.replace(settings, start_date=first)
        env_file.parent.mkdir(parents=True, exist_ok=True)
        env_file.write_text(f"RETAIL_LAKEHOUSE_START_DATE={first.isoformat()}\n")
        started = time.perf_counter()
        generate(settings.landing_root, first, DEMO_DAYS, seed=DEMO_SEED, scale=DEMO_SCALE)
        print(f"generated demo drops {first}..{last} into {settings.landing_root} in {time.perf_counter() - started:.1f} s")
    else:
        # Drops already there: their days are the partitions from RETAIL_LAKEHOUSE_START_DATE on.
        first = settings.start_date
        last = first + dt.timedelta(days=DEMO_DAYS - 1)
    defs = build_defs(settings)
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    started = time.perf_counter()
    result = run_range(defs, first, last, instance=instance, raise_on_error=False)
    elapsed = time.perf_counter() - started
    print(f"\nrun {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'} in {elapsed:.1f} s, partitions {first}..{last}")
    if result.success:
        stream = defs.resolve_job_def(POS_JOB)
        pending = batches_of(LocalLandingZone(root=str(settings.landing_root)).list_files(POS_SOURCE))
        started = time.perf_counter()
        # The same exactly-once merge the pos_stream sensor requests, in runs sized by their data.
        for _, chunk in plan_runs(pending):
            stream.execute_in_process(run_config=run_config(chunk), instance=instance)
        print(f"merged {len(pending)} POS micro-batches into gold/inventory_positions and pos_sales_5min in {time.perf_counter() - started:.1f} s")
    print(summary(defs, settings, result))
    print(forecast_accuracy(instance))
    return 0 if result.success else 1


def summary(defs: dg.Definitions, settings: Settings, result: dg.ExecuteInProcessResult) -> str:
    lines = [f"{'table':<32}{'rows':>10}"]
    for layer in ("bronze", "silver", "gold", "ops"):
        folder = settings.lake_root / layer
        if not folder.is_dir():
            continue
        for table in sorted(p.name for p in folder.iterdir()):
            uri = str(folder / table)
            if table_exists(uri):
                rows = pl.scan_delta(uri).select(pl.len()).collect().item()
                lines.append(f"{layer + '/' + table:<32}{rows:>10,}")
    checks = result.get_asset_check_evaluations()
    if checks:
        lines.append(f"\n{'check':<64}{'result':>8}")
        for ev in sorted(checks, key=lambda e: (e.asset_key.to_user_string(), e.check_name)):
            name = f"{ev.asset_key.to_user_string()}:{ev.check_name}"
            # A failed WARN check reports drift; only a failed ERROR check blocked something.
            verdict = "PASS" if ev.passed else ("FAIL" if ev.severity == dg.AssetCheckSeverity.ERROR else "WARN")
            lines.append(f"{name:<64}{verdict:>8}")
    rejected = settings.lake_root / "bronze" / "rejected_files"
    if table_exists(str(rejected)):
        lines.append("\nrejected files (kept in bronze/rejected_files):")
        for row in pl.read_delta(str(rejected)).sort("_source_file").iter_rows(named=True):
            lines.append(f"  {row['_source_file']}: {row['reason']}")
    return "\n".join(lines)


def forecast_accuracy(instance: dg.DagsterInstance) -> str:
    """The held-out accuracy gold/demand_forecast recorded, per level: model MASE against seasonal-naive's."""
    event = instance.get_latest_materialization_event(dg.AssetKey(["gold", "demand_forecast"]))
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    levels = sorted(key.removeprefix("mase_model_") for key in metadata if key.startswith("mase_model_"))
    if not levels:
        return "\ngold/demand_forecast: no held-out accuracy (too little history)"
    lines = [f"\n{'demand forecast, held-out MASE':<40}{'model':>10}{'seasonal-naive':>16}"]
    for level in levels:
        naive = metadata.get(f"mase_seasonal_naive_{level}")
        naive_text = f"{naive.value:>16.3f}" if naive is not None else f"{'-':>16}"
        lines.append(f"{level:<40}{metadata[f'mase_model_{level}'].value:>10.3f}{naive_text}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
