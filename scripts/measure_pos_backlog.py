"""A backlog of POS micro-batches: the sensor tick, the runs it requests, exactly once, and the
sensor over a landing zone of 100,000 batches.

    .venv/bin/python scripts/measure_pos_backlog.py [--batches 20000] [--listing 100000] [--json out.json]

`make bench` runs it too and puts its table and the stream's targets in the report.

In a temporary folder: a three-day lakehouse from generated drops (so `silver/inventory` exists),
then `--batches` micro-batches of 1-5 events each, 5 minutes apart (~70 days for 20,000), on the
inventory's store/product pairs; about 1% of events re-sent in a later batch, 1% of rows invalid and
one unreadable file per 5,000 batches. It times

(a) the first `pos_stream` tick over that backlog (and a second one, with nothing new);
(b) every run that tick requests, executed in process on an on-disk DagsterInstance configured by
    the project's dagster.yaml (its batching SQLite event log), then checks that the ledger holds
    each valid event exactly once;
(c) the sensor over `--listing` tiny batches (~347 days): the first tick, then against a ledger
    that holds them all a regular tick with one new batch, the daily reconciliation and a tick
    without cursor; and the cursor size (with the size the cursor of the first design, every batch
    ever seen, would have).
"""

import argparse
import datetime as dt
import json
import logging
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg
import polars as pl

PROJECT = Path(__file__).resolve().parent.parent
START = dt.date(2026, 9, 1)
SNAPSHOT_DAYS = 3


def batch_name(at: dt.datetime, seq: int) -> str:
    return f"pos_events_{at:%Y%m%d_%H%M%S}_{seq:04d}.jsonl"


def write_backlog(folder: Path, n: int, pairs: list[tuple[str, str]], first: dt.datetime, seed: int = 1) -> set[str]:
    """`n` micro-batches, one every 5 minutes from `first`; returns the event ids of the valid rows."""
    rng = random.Random(seed)
    valid: set[str] = set()
    recent: list[str] = []
    folder.mkdir(parents=True, exist_ok=True)
    for b in range(n):
        at = first + dt.timedelta(minutes=5 * b)
        name = batch_name(at, b % 10_000)
        if b % 5_000 == 2_500:
            (folder / name).write_text('{"event_id": "truncated upload\n')
            continue
        lines = []
        for i in range(rng.randint(1, 5)):
            store, product = rng.choice(pairs)
            event_id, ts = f"EV{b:06d}-{i}", (at - dt.timedelta(seconds=rng.randint(1, 299))).strftime("%Y-%m-%d %H:%M:%S")
            quantity = rng.choice([1, 1, 1, 2, 3, -1])
            if rng.random() < 0.01:
                lines.append({"event_id": event_id, "event_ts": ts, "store_id": store, "product_id": product, "quantity": "lots"})
                continue
            lines.append({"event_id": event_id, "event_ts": ts, "store_id": store, "product_id": product, "quantity": quantity})
            valid.add(event_id)
            recent.append(event_id)
        if recent and rng.random() < 0.04:
            # A till re-sending an event it already sent in an earlier batch.
            lines.append({"event_id": rng.choice(recent[-50:]), "event_ts": ts, "store_id": store, "product_id": product, "quantity": 1})
        (folder / name).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return valid


# Dagster's console log at ERROR: the runs' DEBUG lines would bury the table.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def timed(call):
    started = time.perf_counter()
    out = call()
    return out, time.perf_counter() - started


def tick(sensor, cursor, resources, repeat: int = 3):
    """A tick's result and its median time over `repeat` evaluations (a tick has no side effects)."""
    times = []
    for _ in range(repeat):
        with dg.build_sensor_context(cursor=cursor, resources=resources) as context:
            result, took = timed(lambda: sensor(context))
        times.append(took)
    return result, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20_000)
    parser.add_argument("--listing", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="also write the measurements here (as `make bench` reads them)")
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.ERROR)
    from retail_lakehouse.definitions import build_defs
    from retail_lakehouse.generator import generate
    from retail_lakehouse.gold.positions import POS_EVENT_SCHEMA
    from retail_lakehouse.landing import LocalLandingZone
    from retail_lakehouse.orchestration import run_range
    from retail_lakehouse.settings import Settings
    from retail_lakehouse.storage import LocalLakehouse
    from retail_lakehouse.stream.rules import POS_SOURCE, RECONCILE_DAYS
    from retail_lakehouse.stream.sensor import build_pos_sensor, requested_batches

    rows: list[tuple[str, str, str]] = []
    figures: dict[str, object] = {"batches": args.batches, "listing": args.listing}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "dagster_home"
        home.mkdir()
        shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
        # The event log storage finds its folder through DAGSTER_HOME, as under `make demo`.
        os.environ["DAGSTER_HOME"] = str(home)
        instance = dg.DagsterInstance.get()
        generate(root / "landing", START, SNAPSHOT_DAYS, seed=1, scale=0.05)
        (root / "key").write_text("backlog")
        settings = Settings(landing_root=root / "landing", lake_root=root / "lake", start_date=START, token_key_file=root / "key")
        defs = build_defs(settings)
        assert run_range(defs, START, START + dt.timedelta(days=SNAPSHOT_DAYS - 1), instance=instance).success
        lake = defs.resources["lake"]
        pairs = sorted(set(pl.read_delta(str(root / "lake" / "silver" / "inventory")).select("store_id", "product_id").iter_rows()))
        folder = root / "landing" / POS_SOURCE
        shutil.rmtree(folder)  # only the backlog below is in the stream
        first_batch = dt.datetime.combine(START + dt.timedelta(days=SNAPSHOT_DAYS), dt.time())
        valid = write_backlog(folder, args.batches, pairs, first_batch)
        span = (args.batches * 5) / (60 * 24)

        resources = {"landing": defs.resources["landing"], "lake": lake}
        sensor = defs.resolve_sensor_def("pos_stream")
        first, t_first = tick(sensor, None, resources)
        again, t_again = tick(sensor, first.cursor, resources)
        assert not again.run_requests
        sizes = [len(requested_batches(r.run_config)) for r in first.run_requests]
        rows.append((f"(a) first tick, backlog of {args.batches:,} batches over {span:.0f} days", f"{t_first:.2f} s", f"{len(sizes)} runs of {min(sizes):,}-{max(sizes):,} batches"))
        rows.append(("(a) next tick, nothing new", f"{t_again:.3f} s", f"cursor {len(first.cursor):,} bytes"))

        job = defs.resolve_job_def("pos_merge")
        started = time.perf_counter()
        per_run = []
        for request in first.run_requests:
            run_started = time.perf_counter()
            result = job.execute_in_process(run_config={**request.run_config, **QUIET}, instance=instance, tags={"dagster/run_key": request.run_key})
            assert result.success
            per_run.append(time.perf_counter() - run_started)
        t_runs = time.perf_counter() - started
        ledger = pl.read_delta(str(root / "lake" / "gold" / "pos_ledger"))
        exactly_once = ledger["event_id"].is_unique().all() and set(ledger["event_id"]) == valid and ledger.height == len(valid)
        figures.update(backlog_s=round(t_runs, 2), exactly_once=bool(exactly_once), runs=len(per_run))
        rows.append((
            f"(b) executing the {len(per_run)} runs (DagsterInstance on disk)", f"{t_runs:.1f} s",
            f"{ledger.height:,} events in the ledger; exactly once: {'yes' if exactly_once else 'NO'}; per run {min(per_run):.1f}-{max(per_run):.1f} s",
        ))
        replay, t_replay = timed(lambda: job.execute_in_process(run_config={**first.run_requests[-1].run_config, **QUIET}, instance=instance))
        assert replay.success and pl.read_delta(str(root / "lake" / "gold" / "pos_ledger")).height == ledger.height
        rows.append(("(b) replaying the last run", f"{t_replay:.1f} s", "inserts nothing"))

        # (c) Listing: tiny batches, one every 5 minutes; the ledger is written directly (one event
        # per batch), as if they had all been merged.
        wide = root / "wide"
        many = wide / POS_SOURCE
        many.mkdir(parents=True)
        stamps = [dt.datetime(2026, 12, 1) - dt.timedelta(minutes=5 * i) for i in range(args.listing)]
        line = '{"event_id": "E", "event_ts": "2026-01-01 00:00:00", "store_id": "S1", "product_id": "P1", "quantity": 1}\n'
        names = [batch_name(at, i % 10_000) for i, at in enumerate(stamps)]
        for name in names:
            (many / name).write_text(line)
        wide_lake = LocalLakehouse(root=str(wide / "lake"))
        wide_resources = {"landing": LocalLandingZone(root=str(wide)), "lake": wide_lake}
        today = [dt.date(2026, 12, 1)]
        wide_sensor = build_pos_sensor(today=lambda: today[0])
        cold, t_cold = tick(wide_sensor, None, wide_resources)
        cold_sizes = [len(requested_batches(r.run_config)) for r in cold.run_requests]
        rows.append((f"(c) first tick, {args.listing:,} batches, nothing merged", f"{t_cold:.2f} s", f"{len(cold_sizes)} runs requested"))
        ledger = pl.DataFrame(
            {"event_id": [f"E{i}" for i in range(len(names))], "event_ts": [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)] * len(names),
             "store_id": "S1", "product_id": "P1", "quantity": 1, "batch": [f"{POS_SOURCE}/{n}" for n in names]},
        ).cast(POS_EVENT_SCHEMA)
        wide_lake.write_whole(dg.AssetKey(["gold", "pos_ledger"]), ledger)
        (many / batch_name(dt.datetime(2026, 12, 1, 0, 5), 9_999)).write_text(line)
        regular, t_regular = tick(wide_sensor, cold.cursor, wide_resources)
        assert len(regular.run_requests) == 1
        rows.append((f"(c) regular tick, {args.listing:,} batches, one new", f"{t_regular:.3f} s", f"cursor {len(regular.cursor):,} bytes"))
        figures.update(regular_tick_s=round(t_regular, 3), cursor_bytes=len(regular.cursor), backlog_cursor_bytes=len(first.cursor))
        today[0] += dt.timedelta(days=1)
        daily, t_daily = tick(wide_sensor, regular.cursor, wide_resources)
        rows.append((f"(c) daily reconciliation (last {RECONCILE_DAYS} days), {args.listing:,} batches", f"{t_daily:.2f} s", f"{len(daily.run_requests)} runs requested"))
        reset, t_reset = tick(wide_sensor, None, wide_resources)
        rows.append((f"(c) tick without cursor, all {args.listing:,} batches in the ledger", f"{t_reset:.2f} s", f"{len(reset.run_requests)} runs requested"))
        old = json.dumps(LocalLandingZone(root=str(wide)).fingerprints(POS_SOURCE), sort_keys=True)
        rows.append(("(c) cursor of the first design (every batch seen)", "", f"{len(old):,} bytes"))
        figures.update(first_design_cursor_bytes=len(old))
        instance.dispose()

    table = "\n".join(["| measurement | time | notes |", "|---|---:|---|", *(f"| {w} | {t} | {n} |" for w, t, n in rows)])
    print(table)
    if args.json:
        args.json.write_text(json.dumps({**figures, "table": table}, indent=1))


if __name__ == "__main__":
    main()
