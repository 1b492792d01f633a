"""Latency from a POS micro-batch landing to its rows merged into gold/inventory_positions.

    .venv/bin/python scripts/measure_pos_latency.py [--batches 10]

Builds a small lakehouse in a temporary folder (generated drops, one backfill run), then for each
new batch: write the file into the landing zone, evaluate the pos_stream sensor tick, and execute
the run it requests in process. Sensor interval (30 s in the daemon) is not included: add it for
the worst case.
"""

import argparse
import datetime as dt
import logging
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)
    from retail_lakehouse.definitions import build_defs
    from retail_lakehouse.generator import generate
    from retail_lakehouse.orchestration import run_range
    from retail_lakehouse.settings import Settings

    start = dt.date(2026, 9, 1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root / "landing", start, 10, seed=1, scale=0.2)
        template = sorted((root / "landing" / "pos_events").glob("*.jsonl"))[-1].read_text().splitlines()
        (root / "key").write_text("latency")
        settings = Settings(landing_root=root / "landing", lake_root=root / "lake", start_date=start, token_key_file=root / "key")
        defs = build_defs(settings)
        assert run_range(defs, start, start + dt.timedelta(days=9)).success
        sensor, job = defs.resolve_sensor_def("pos_stream"), defs.resolve_job_def("pos_merge")
        resources = {"landing": defs.resources["landing"], "lake": defs.resources["lake"]}

        def tick(cursor):
            with dg.build_sensor_context(cursor=cursor, resources=resources) as context:
                return sensor(context)

        # Everything already delivered counts as seen: only the new batches are timed.
        cursor = tick(None).cursor
        latencies = []
        for i in range(args.batches):
            lines = [line.replace('"event_id": "', f'"event_id": "LAT{i}-') .replace('"event_id":"', f'"event_id":"LAT{i}-') for line in template]
            landed = time.perf_counter()
            (root / "landing" / "pos_events" / f"pos_events_20260910_235959_{100 + i:04d}.jsonl").write_text("\n".join(lines) + "\n")
            result = tick(cursor)
            cursor = result.cursor
            for request in result.run_requests:
                assert job.execute_in_process(run_config=request.run_config).success
            latencies.append(time.perf_counter() - landed)
    print(f"{len(latencies)} batches: landing → merged in min {min(latencies):.2f} s, median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s (plus the sensor interval, 30 s)")


if __name__ == "__main__":
    main()
