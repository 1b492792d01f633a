"""Dagster's per-event bookkeeping, isolated: 21 no-op daily-partitioned assets, timed through the CLI.

The assets do no data work and their I/O manager stores nothing, so the whole wall time of

    dagster asset materialize -f scripts/event_cost.py --select '*' --partition-range A...B

is Dagster: code loading, run creation (one ASSET_MATERIALIZATION_PLANNED event per asset and
partition), the step machinery and the materialization events (one per asset and partition).

    .venv/bin/python scripts/event_cost.py bench --days 365 --variants stock,batch
    .venv/bin/python scripts/event_cost.py bench --days 31 --variants all --repeat 2
    .venv/bin/python scripts/event_cost.py verify --home /tmp/xyz      # after a run
    .venv/bin/python scripts/event_cost.py profile --days 365 --variant stock   # py-spy

Every variant gets a fresh DAGSTER_HOME on local disk (not tmpfs) with its own dagster.yaml, and
runs as a whole process under /usr/bin/time -v. Variants run interleaved in one command, so the
ratios between them hold on a shared, noisy machine even when the absolute seconds do not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)

START = "2025-01-01"
LAYERS = ("bronze", "silver", "gold")
TABLES = 7  # 3 layers x 7 tables = 21 partitioned assets, the project's count

daily = dg.DailyPartitionsDefinition(start_date=START, end_offset=0)


class NoopIOManager(dg.ConfigurableIOManager):
    """Stores nothing; records one metadata entry so the per-partition metadata path is exercised."""

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        keys = context.asset_partition_keys if context.has_asset_partitions else []
        context.add_output_metadata({"partitions": len(keys), "rows": dg.MetadataValue.int(5 * len(keys))})

    def load_input(self, context: dg.InputContext):
        return None


def _maybe_fail(layer: str, name: str) -> None:
    # For the failure-status check: EVENT_COST_FAIL=silver/t3 makes that asset's step fail.
    if os.environ.get("EVENT_COST_FAIL") == f"{layer}/{name}":
        raise RuntimeError(f"{layer}/{name} fails on purpose (EVENT_COST_FAIL)")


def _make(layer: str, i: int, upstream: str | None) -> dg.AssetsDefinition:
    name = f"t{i}"

    common = dict(
        key=[layer, name], partitions_def=daily, backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=layer,
    )
    if upstream is None:

        @dg.asset(**common)
        def _root(context):
            _maybe_fail(layer, name)
            return len(context.partition_keys)

        return _root

    @dg.asset(**common, ins={"up": dg.AssetIn(key=[upstream, name])})
    def _child(context, up):
        _maybe_fail(layer, name)
        return len(context.partition_keys)

    return _child


def build_assets() -> list[dg.AssetsDefinition]:
    out = []
    for li, layer in enumerate(LAYERS):
        for i in range(TABLES):
            out.append(_make(layer, i, LAYERS[li - 1] if li else None))
    return out


defs = dg.Definitions(
    assets=build_assets(),
    resources={"io_manager": NoopIOManager()},
    # As the project's definitions: every step of a run in one process (the default multiprocess
    # executor would add a Python start-up per step and hide the per-event cost in child processes).
    executor=dg.in_process_executor,
)


# ---------------------------------------------------------------------------------------------
# Variants: (env vars, dagster.yaml body). The base dagster.yaml is the project's own.
# ---------------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
PROJECT_YAML = (ROOT / "dagster.yaml").read_text()
BIN = Path(sys.executable).parent


def _storage_yaml(**config: object) -> str:
    lines = ["event_log_storage:", "  module: retail_lakehouse.instance", "  class: BatchingSqliteEventLogStorage"]
    if config:
        lines.append("  config:")
        lines += [f"    {k}: {json.dumps(v)}" for k, v in config.items()]
    return "\n".join(lines) + "\n"


QUIET_LOGS = "python_logs:\n  python_log_level: WARNING\n"
# The CLI's console logger prints every event (DEBUG) to stderr; run config can raise its level.
QUIET_CONSOLE = ["--config-json", json.dumps({"loggers": {"console": {"config": {"log_level": "WARNING"}}}})]

# name -> (env vars, dagster.yaml addition, extra CLI args)
VARIANTS: dict[str, tuple[dict[str, str], str, list[str]]] = {
    # The default instance the README's CLI runs on.
    "stock": ({}, "", []),
    # (a) the env var alone: SqliteEventLogStorage.store_event_batch is a plain loop.
    "stock+env200": ({"DAGSTER_EVENT_BATCH_SIZE": "200"}, "", []),
    # (e) Dagster's own switch: one planned event per asset, carrying the partitions subset.
    "stock+subset": ({"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1"}, "", []),
    "stock+env200+subset": (
        {"DAGSTER_EVENT_BATCH_SIZE": "200", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1"}, "", []),
    # (d) console logger at WARNING (run config), stock storage.
    "stock+quietconsole": ({}, "", QUIET_CONSOLE),
    # (b) the storage with batching off: only its cached engines/connections (synchronous FULL).
    "cached-conn": ({}, _storage_yaml(batch_size=0, planned_partitions_subset=False, synchronous="FULL"), []),
    # (c) + synchronous=NORMAL.
    "cached-conn+normal": ({}, _storage_yaml(batch_size=0, planned_partitions_subset=False), []),
    # (b) real batches, turned on by the storage itself, fsync per commit kept.
    "batch": ({}, _storage_yaml(planned_partitions_subset=False, synchronous="FULL"), []),
    # (b)+(c)
    "batch+normal": ({}, _storage_yaml(planned_partitions_subset=False), []),
    # (b)+(c)+(e): the storage's defaults.
    "batch+normal+subset": ({}, _storage_yaml(), []),
    # (b)+(c)+(e)+(d)
    "batch+normal+subset+quietconsole": ({}, _storage_yaml(), QUIET_CONSOLE),
    "batch+normal+subset+quietpython": ({}, _storage_yaml() + QUIET_LOGS, []),
}


def _parse_time_v(stderr: str) -> dict[str, float]:
    out = {}
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", stderr)
    if m:
        parts = [float(p) for p in m.group(1).split(":")]
        out["wall"] = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    for key, label in (("user", "User time (seconds)"), ("sys", "System time (seconds)")):
        m = re.search(re.escape(label) + r": (\S+)", stderr)
        if m:
            out[key] = float(m.group(1))
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    if m:
        out["rss_mb"] = int(m.group(1)) / 1024
    m = re.search(r"File system outputs: (\d+)", stderr)
    if m:
        out["fs_out"] = int(m.group(1))
    return out


def make_home(variant: str, parent: Path) -> tuple[Path, dict[str, str]]:
    env_extra, yaml_extra, _ = VARIANTS[variant]
    home = Path(tempfile.mkdtemp(prefix=f"ec-{variant.replace('+', '_')}-", dir=parent))
    (home / "dagster.yaml").write_text(PROJECT_YAML + "\n" + yaml_extra)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env.update(env_extra)
    env["DAGSTER_HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return home, env


def materialize_cmd(days: int) -> list[str]:
    end = (dt.date.fromisoformat(START) + dt.timedelta(days=days - 1)).isoformat()
    return [
        str(BIN / "dagster"), "asset", "materialize", "-f", str(Path(__file__).resolve()),
        "--select", "*", "--partition-range", f"{START}...{end}",
    ]


def run_variant(variant: str, days: int, parent: Path, keep: bool = False, prefix: list[str] | None = None):
    home, env = make_home(variant, parent)
    cmd = (prefix or ["/usr/bin/time", "-v"]) + materialize_cmd(days) + VARIANTS[variant][2]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    stats = _parse_time_v(proc.stderr)
    stats.setdefault("wall", wall)
    stats["ok"] = proc.returncode == 0
    stats["stderr_lines"] = proc.stderr.count("\n")
    if not stats["ok"]:
        sys.stderr.write(proc.stderr[-3000:])
    if not keep:
        shutil.rmtree(home, ignore_errors=True)
    return stats, home


def cmd_bench(args) -> None:
    variants = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    parent = Path(args.parent)
    parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(args.repeat):
        for v in variants:  # interleaved
            stats, _ = run_variant(v, args.days, parent)
            results[v].append(stats)
            print(f"  [{r}] {v:28s} wall {stats['wall']:7.2f}s user {stats.get('user', 0):6.2f} "
                  f"sys {stats.get('sys', 0):5.2f} rss {stats.get('rss_mb', 0):5.0f}MB "
                  f"fs_out {stats.get('fs_out', 0):7d} stderr {stats['stderr_lines']:6d} lines ok={stats['ok']}",
                  flush=True)
    print(f"\n| variant ({args.days} days x {len(LAYERS) * TABLES} assets) | wall s (best) | user s | sys s | peak RSS MB | vs stock |")
    print("|---|---|---|---|---|---|")
    base = min(s["wall"] for s in results.get("stock", [])) if "stock" in results else None
    for v, runs in results.items():
        best = min(runs, key=lambda s: s["wall"])
        ratio = f"{base / best['wall']:.1f}x faster" if base else "-"
        print(f"| {v} | {best['wall']:.1f} | {best.get('user', 0):.1f} | {best.get('sys', 0):.1f} | "
              f"{best.get('rss_mb', 0):.0f} | {ratio} |")


def cmd_profile(args) -> None:
    parent = Path(args.parent)
    parent.mkdir(parents=True, exist_ok=True)
    out = Path(args.out or f"/tmp/event_cost_{args.variant}_{args.days}.txt")
    prefix = [str(BIN / "py-spy"), "record", "--idle", "-r", "50", "-f", "raw", "-o", str(out), "--"]
    stats, home = run_variant(args.variant, args.days, parent, keep=False, prefix=prefix)
    print(f"{args.variant}: wall {stats['wall']:.1f}s ok={stats['ok']} profile {out}")
    summarize_profile(out)


# Inclusive share of wall time (py-spy --idle) under frames matching these patterns; they overlap.
PROFILE_FRAMES = [
    ("run creation: planned events (_log_asset_planned_events)", r"^RunDomain\._log_asset_planned_events "),
    ("storing events (EventLogStorage.store_event[_batch])", r"EventLogStorage\.store_event(_batch)? \("),
    ("  SQLAlchemy compile (_compile_w_cache)", r"^ClauseElement\._compile_w_cache "),
    ("  sqlite close (WAL checkpoint + fsync)", r"^DefaultDialect\.do_close "),
    ("  sqlite commit (fsync)", r"^DefaultDialect\.do_commit "),
    ("  sqlite execute/executemany", r"^DefaultDialect\.do_execute(many)? "),
    ("  create_engine + dispose + connect", r"^create_engine \(sqlalchemy|^Engine\.dispose |^DefaultDialect\.connect "),
    ("  has_table + column inspection", r"EventLogStorage\.has_table |^Inspector\.get_columns "),
    ("  serialization (serialize_value)", r"^serialize_value "),
    ("console logging (StreamHandler.emit)", r"^StreamHandler\.emit "),
    ("building asset events (_get_output_asset_events)", r"^_get_output_asset_events "),
    ("imports (_find_and_load)", r"^_find_and_load "),
]


def summarize_profile(path: Path) -> None:
    total = 0
    hits = {label: 0 for label, _ in PROFILE_FRAMES}
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        frames = stack.split(";")
        for label, pat in PROFILE_FRAMES:
            if any(re.search(pat, f) for f in frames):
                hits[label] += int(n)
    print(f"  {total} samples (50 Hz, --idle: shares of wall time; inclusive, overlapping)")
    for label, _ in PROFILE_FRAMES:
        print(f"  {100 * hits[label] / max(total, 1):5.1f}%  {label}")


def instance_digest(home: Path, days: int) -> dict:
    """What the UI reads, for a few assets: statuses, partitions, per-partition metadata, run log."""
    from dagster import AssetKey, DagsterEventType, DagsterInstance
    from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

    expected = set(daily.get_partition_keys_in_range(
        dg.PartitionKeyRange(START, (dt.date.fromisoformat(START) + dt.timedelta(days=days - 1)).isoformat())))
    out: dict = {"problems": []}
    os.environ["DAGSTER_HOME"] = str(home)  # the batching storage's default base_dir
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        out["runs"] = [(r.status.value, r.tags.get("dagster/asset_partition_range_start"),
                        r.tags.get("dagster/asset_partition_range_end")) for r in runs]
        run = runs[0]
        logs = instance.all_logs(run.run_id)
        counts: dict[str, int] = {}
        for e in logs:
            if e.dagster_event:
                counts[e.dagster_event_type.value] = counts.get(e.dagster_event_type.value, 0) + 1
        out["run_log_counts"] = counts
        n_assets = len(LAYERS) * TABLES
        if counts.get("ASSET_MATERIALIZATION") != n_assets * days and not os.environ.get("EVENT_COST_FAIL"):
            out["problems"].append(f"run log has {counts.get('ASSET_MATERIALIZATION')} materializations")
        for key in (AssetKey(["bronze", "t0"]), AssetKey(["silver", "t3"]), AssetKey(["gold", "t3"]),
                    AssetKey(["gold", "t6"])):
            k = key.to_user_string()
            mat = set(instance.get_materialized_partitions(key))
            status = get_and_update_asset_status_cache_value(instance, key, daily)
            cache_mat = set(status.deserialize_materialized_partition_subsets(daily).get_partition_keys())
            failed = set(status.deserialize_failed_partition_subsets(daily).get_partition_keys())
            in_prog = set(status.deserialize_in_progress_partition_subsets(daily).get_partition_keys())
            recs = instance.fetch_materializations(key, limit=10 * days).records
            by_part = {r.partition_key: r.asset_materialization.metadata for r in recs}
            one = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[START]), limit=5).records
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                planned = instance.fetch_planned_materializations(key, limit=100 * days).records
            rec = instance.get_asset_records([key])[0]
            last = rec.asset_entry.last_materialization_record
            tags_by_part = instance.get_latest_tags_by_partition(
                key, DagsterEventType.ASSET_MATERIALIZATION, ["dagster/data_version"]) if hasattr(
                instance, "get_latest_tags_by_partition") else {}
            latest_ids = instance.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION)
            d = {
                "materialized": len(mat), "cache_materialized": len(cache_mat), "failed": sorted(failed),
                "in_progress": sorted(in_prog), "fetched": len(recs), "distinct_partitions": len(by_part),
                "metadata_sample": {m: str(v.value) for m, v in sorted(by_part.get(START, {}).items())},
                "one_partition_fetch": len(one), "planned_records": len(planned),
                "planned_partitions": sorted({p.partition_key for p in planned} - {None})[:1],
                "last_materialization_partition": last.partition_key if last else None,
                "last_run_is_run": rec.asset_entry.last_run_id == run.run_id,
                "data_version_tags": len(tags_by_part), "latest_storage_ids": len(latest_ids),
            }
            out[k] = d
            if os.environ.get("EVENT_COST_FAIL"):
                continue
            if mat != expected or cache_mat != expected or len(by_part) != days or len(latest_ids) != days:
                out["problems"].append(f"{k}: partitions {len(mat)}/{len(cache_mat)}/{len(by_part)} != {days}")
    return out


def cmd_verify(args) -> None:
    """Run two variants on fresh homes, print what the UI's queries return for each, diff them."""
    parent = Path(args.parent)
    parent.mkdir(parents=True, exist_ok=True)
    if args.fail:
        os.environ["EVENT_COST_FAIL"] = args.fail
    digests = {}
    for v in args.variants.split(","):
        stats, home = run_variant(v, args.days, parent, keep=True)
        digests[v] = instance_digest(home, args.days)
        print(f"== {v}: wall {stats['wall']:.1f}s ok={stats['ok']} home={home}")
        print(json.dumps(digests[v], indent=1, default=str)[:3000])
    names = list(digests)
    a = digests[names[0]]
    for b_name in names[1:]:
        b = digests[b_name]
        for key in a:
            if key in ("runs", "run_log_counts"):
                continue
            # Expected difference: with one planned event per asset, a planned record's own
            # partition_key is None (the event carries the subset; the index row has the partition).
            strip = lambda d: {k: v for k, v in d.items() if k != "planned_partitions"} if isinstance(d, dict) else d  # noqa: E731
            if strip(a[key]) != strip(b[key]):
                print(f"DIFF {names[0]} vs {b_name} [{key}]:\n  {a[key]}\n  {b[key]}")


def cmd_concurrent(args) -> None:
    """A second process reads the instance (the UI's queries, a run-log watcher, the status cache
    writer) while the CLI run writes; reports errors, what it saw in progress, and whether the
    watcher received every event of the run."""
    from dagster import AssetKey, DagsterInstance
    from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

    parent = Path(args.parent)
    parent.mkdir(parents=True, exist_ok=True)
    if args.stock_watcher:  # show why the batching storage watches <run>.db-wal too
        from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

        from retail_lakehouse.instance import BatchingSqliteEventLogStorage

        BatchingSqliteEventLogStorage.watch = SqliteEventLogStorage.watch
    home, env = make_home(args.variant, parent)
    os.environ["DAGSTER_HOME"] = str(home)
    proc = subprocess.Popen(materialize_cmd(args.days) + VARIANTS[args.variant][2], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    errors: list[str] = []
    seen: list = []
    max_in_progress = 0
    max_materialized = 0
    reads = 0
    key_mat, key_status = AssetKey(["gold", "t6"]), AssetKey(["silver", "t3"])
    # The instance (and its storage) may not exist yet: wait for the run to be created.
    instance = None
    run_id = None
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            if instance is None and (home / "history" / "runs.db").exists():
                instance = DagsterInstance.from_config(str(home))
            if instance is not None:
                runs = instance.get_runs(limit=1)
                if runs:
                    run_id = runs[0].run_id
                    break
        except Exception as e:  # noqa: BLE001
            errors.append(f"startup: {type(e).__name__}: {e}")
        time.sleep(0.05)
    assert instance is not None and run_id is not None, errors
    def on_event(event, cursor):
        seen.append(proc.poll() is None)  # True: delivered while the writer was still running

    instance.watch_event_logs(run_id, None, on_event)
    finished_at = None
    while True:
        try:
            run = instance.get_run_by_id(run_id)
            max_materialized = max(max_materialized, len(instance.get_materialized_partitions(key_mat)))
            status = get_and_update_asset_status_cache_value(instance, key_status, daily)
            if status is not None:
                in_prog = status.deserialize_in_progress_partition_subsets(daily)
                max_in_progress = max(max_in_progress, len(in_prog))
            len(instance.all_logs(run_id))
            reads += 1
        except Exception as e:  # noqa: BLE001
            errors.append(f"{type(e).__name__}: {e}")
        if proc.poll() is not None and finished_at is None:
            finished_at = time.time()
        if finished_at and time.time() - finished_at > 3:
            break
        time.sleep(0.1)
    total = len(instance.all_logs(run_id))
    run = instance.get_run_by_id(run_id)
    instance.end_watch_event_logs(run_id, on_event)
    print(json.dumps({
        "variant": args.variant, "days": args.days, "exit": proc.returncode, "run_status": run.status.value,
        "reader_loops": reads, "reader_errors": errors[:5], "n_errors": len(errors),
        "max_in_progress_seen(silver/t3)": max_in_progress, "max_materialized_seen(gold/t6)": max_materialized,
        "events_in_run_log": total, "events_seen_by_watcher": len(seen),
        "seen_while_writer_ran": sum(seen),
    }, indent=1))
    instance.dispose()


UI_QUERY = """
query Statuses($keys: [AssetKeyInput!], $key: AssetKeyInput!, $runId: ID!, $day: String!) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    partitionStats { numPartitions numMaterialized numFailed numMaterializing }
    assetPartitionStatuses {
      __typename
      ... on TimePartitionStatuses { ranges { startKey endKey status } }
    }
  }
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(partitions: [$day]) {
        partition runId
        metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
  runOrError(runId: $runId) { __typename ... on Run { status } }
}
"""

LOGS_QUERY = """
query Logs($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 5000) {
    __typename
    ... on EventConnection { events { __typename } cursor hasMore }
  }
}
"""


def _graphql(port: int, query: str, variables: dict) -> dict:
    import urllib.request

    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def cmd_ui(args) -> None:
    """Run a variant, start dagster-webserver on its instance, read what the UI reads, stop it."""
    import signal
    import socket
    import urllib.request

    parent = Path(args.parent)
    parent.mkdir(parents=True, exist_ok=True)
    if args.fail:
        os.environ["EVENT_COST_FAIL"] = args.fail
    stats, home = run_variant(args.variant, args.days, parent, keep=True)
    os.environ.pop("EVENT_COST_FAIL", None)
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        run_id = instance.get_runs(limit=1)[0].run_id
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, env = make_home(args.variant, parent)  # same env vars; point it at the kept home
    env["DAGSTER_HOME"] = str(home)
    web = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-f", str(Path(__file__).resolve())],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).read()
                break
            except Exception:  # noqa: BLE001
                if time.time() > deadline or web.poll() is not None:
                    raise SystemExit("webserver did not start") from None
                time.sleep(0.5)
        keys = [{"path": ["bronze", "t0"]}, {"path": ["silver", "t3"]}, {"path": ["gold", "t6"]}]
        started = time.perf_counter()
        data = _graphql(port, UI_QUERY, {"keys": keys, "key": {"path": ["gold", "t6"]}, "runId": run_id,
                                         "day": START})
        took = time.perf_counter() - started
        counts: dict[str, int] = {}
        cursor = None
        while True:
            page = _graphql(port, LOGS_QUERY, {"runId": run_id, "cursor": cursor})["data"]["logsForRun"]
            for e in page["events"]:
                counts[e["__typename"]] = counts.get(e["__typename"], 0) + 1
            cursor = page["cursor"]
            if not page["hasMore"]:
                break
        print(json.dumps({"variant": args.variant, "days": args.days, "fail": args.fail, "run_ok": stats["ok"],
                          "graphql_seconds": round(took, 2), "graphql": data, "logsForRun_counts": counts},
                         indent=1))
    finally:
        # The webserver ignores SIGTERM unless signal handling is restored: end its process group.
        os.killpg(web.pid, signal.SIGTERM)
        try:
            web.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()
        print(f"webserver pid {web.pid} stopped, exit {web.returncode}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--days", type=int, default=365)
    b.add_argument("--variants", default="stock,batch+pragma+subset")
    b.add_argument("--repeat", type=int, default=1)
    b.add_argument("--parent", default="/tmp/event_cost")
    p = sub.add_parser("profile")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--variant", default="stock")
    p.add_argument("--parent", default="/tmp/event_cost")
    p.add_argument("--out")
    v = sub.add_parser("verify")
    v.add_argument("--days", type=int, default=10)
    v.add_argument("--variants", default="stock,batch+normal+subset")
    v.add_argument("--parent", default="/tmp/event_cost")
    v.add_argument("--fail", help="asset (layer/tN) whose step fails, e.g. silver/t3")
    c = sub.add_parser("concurrent")
    c.add_argument("--days", type=int, default=60)
    c.add_argument("--variant", default="batch+normal+subset")
    c.add_argument("--stock-watcher", action="store_true")
    c.add_argument("--parent", default="/tmp/event_cost")
    u = sub.add_parser("ui")
    u.add_argument("--days", type=int, default=365)
    u.add_argument("--variant", default="batch+normal+subset")
    u.add_argument("--fail")
    u.add_argument("--parent", default="/tmp/event_cost")
    s = sub.add_parser("summarize")
    s.add_argument("path")
    args = ap.parse_args()
    if args.cmd == "bench":
        cmd_bench(args)
    elif args.cmd == "profile":
        cmd_profile(args)
    elif args.cmd == "verify":
        cmd_verify(args)
    elif args.cmd == "concurrent":
        cmd_concurrent(args)
    elif args.cmd == "ui":
        cmd_ui(args)
    elif args.cmd == "summarize":
        summarize_profile(Path(args.path))


if __name__ == "__main__":
    main()
