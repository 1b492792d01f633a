"""The harness: generate the drops once, then time every implementation as a whole process, in
interleaved rounds, under `/usr/bin/time -v`; compare their agg_daily_sales; write the report.

    .venv/bin/python -m bench --scale 1                 # the year at scale 1 (make bench SCALE=1)
    .venv/bin/python -m bench --scale 0.1 --days 30     # a quick trial

Implementations (each a separate subprocess, timed whole: interpreter start, imports, JVM, writes):
  a      the README's CLI backfill of every bronze, silver and gold asset over the whole range, on a
         fresh DAGSTER_HOME (the project's dagster.yaml) and a fresh lakehouse;
  b      the same over a copy of the drops cut to their first 5 clean records, dimensions whole (the
         fixed per-partition cost); b_all: every file cut to 5 records, dimensions too;
  c      a 02:00-shaped daily run on the instance and lakehouse (a) left: last-30 .. last;
  d      the project's transforms in one plain Python process, no Dagster, no Delta (Parquet);
  e      DuckDB SQL, the seeds' subset (customer and sales silver, fact, agg_daily_sales);
  f      the seeds' PySpark on local[2], the same subset;
  pos    the POS stream: scripts/measure_pos_backlog.py (a backlog of 20,000 micro-batches merged,
         exactly once; the sensor tick and its cursor at 100,000 batches), once, after the rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import LATE_DATA_DAYS, compare_agg, cut_landing, read_agg, sales_lines

ROOT = Path(__file__).resolve().parent.parent
TIME = Path("/usr/bin/time")
SELECTION = "group:bronze or group:silver or group:gold"
BENCH_TOKEN_KEY = "bench-token-key-not-a-secret"
ORDER = ("a", "b", "b_all", "c", "d", "e", "f", "g")
LABELS = {
    "a": "(a) Dagster CLI backfill of the range, fresh instance, Delta",
    "b": "(b) same, 5 clean records per file, dimensions whole",
    "b_all": "(b') same, every file cut to 5 lines, dimensions too",
    "c": "(c) daily run on (a)'s instance: last day + 30-day window",
    "d": "(d) project transforms, plain Python, no Dagster/Delta, Parquet",
    "e": "(e) DuckDB SQL, seeds' subset, Parquet",
    "f": "(f) seeds' PySpark local[2], seeds' subset, Parquet",
    "g": "(g) as (a), on the Spark engine (local[2])",
}


@dataclass
class Measure:
    wall_s: float
    rss_mb: float  # /usr/bin/time -v "Maximum resident set size"
    tree_rss_mb: float  # sampled sum over the process tree (the JVM of (f) is not waited for by Python)
    exit_status: int
    log_dir: Path
    error: str = ""
    load: float = 0.0  # 1-minute load average when the process started (the machine is shared)

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass
class ImplResult:
    impl: str
    sales_lines: int
    rounds: list[Measure] = field(default_factory=list)
    aggs: list[object] = field(default_factory=list)  # agg_daily_sales frames, one per successful round
    agg_check: str = "n/a"

    def walls(self) -> list[float]:
        return [m.wall_s for m in self.rounds if m.ok]

    def median(self) -> float | None:
        w = self.walls()
        return statistics.median(w) if w else None


# --- timing one process ---------------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _session_rss(sid: int) -> int:
    """Resident bytes of every process in session `sid`."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 21 and int(fields[3]) == sid:
            total += int(fields[21]) * _PAGE
    return total


def _parse_time(text: str) -> tuple[float | None, float | None, int | None]:
    wall = rss = status = None
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    if m:
        parts = [float(p) for p in m.group(1).split(":")]
        wall = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        rss = int(m.group(1)) / 1024
    m = re.search(r"Exit status: (\d+)", text)
    if m:
        status = int(m.group(1))
    return wall, rss, status


def timed(cmd: list[str], env: dict[str, str], log_dir: Path, timeout: float, cwd: Path) -> Measure:
    log_dir.mkdir(parents=True, exist_ok=True)
    time_file = log_dir / "time.txt"
    peak = 0
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with open(log_dir / "stdout.log", "wb") as out, open(log_dir / "stderr.log", "wb") as err:
        proc = subprocess.Popen(
            [str(TIME), "-v", "-o", str(time_file), *cmd], stdout=out, stderr=err, env=env, cwd=cwd,
            start_new_session=True,
        )
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _session_rss(proc.pid))
                done.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        error = ""
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            error = f"timed out after {timeout:.0f} s"
            _kill_group(proc)
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            done.set()
            sampler.join()
    elapsed = time.perf_counter() - started
    wall, rss, status = _parse_time(time_file.read_text() if time_file.exists() else "")
    status = proc.returncode if status is None else status
    if status and not error:
        error = _failure_line(log_dir)
    return Measure(wall if wall is not None else elapsed, rss or 0.0, peak / 2**20, status, log_dir, error, load)


def _failure_line(log_dir: Path) -> str:
    """The line of a failed run's logs that says why: the last one naming an error."""
    lines = []
    for name in ("stderr.log", "stdout.log"):
        lines += (log_dir / name).read_text(errors="replace").strip().splitlines()
    # The first Python exception is the root cause (a failed step, then "Materialization failed").
    raised = [i for i, line in enumerate(lines) if re.match(r"^[\w.]*(Error|Exception|Violation\w*|Interrupt)\b.*:", line.strip())]
    named = [i for i, line in enumerate(lines) if re.search(r"Error|error|Exception|FAILURE|failed", line)]
    pick = (raised[:1] or named[-1:] or ([len(lines) - 1] if lines else []))
    if not pick:
        return f"(no output) (logs: {log_dir})"
    line = lines[pick[0]].strip()
    if line.endswith(":") and pick[0] + 1 < len(lines):
        line += " " + lines[pick[0] + 1].strip()  # "1 blocking asset check failed ...:" names it on the next line
    return f"{line[:300]} (logs: {log_dir})"


def _kill_group(proc: subprocess.Popen) -> None:
    """End the process group this harness started (its own session), and nothing else."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


# --- the implementations' commands ----------------------------------------------------------------


def readme_cli() -> str:
    """'dg' if the README's backfill command is `dg launch`, else 'dagster' (`dagster asset materialize`)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Backfill", 1)[1] if "## Backfill" in text else text
    section = section.split("\n## ", 1)[0]
    return "dg" if "dg launch" in section else "dagster"


# The virtualenv of every process but those of the Polars engine's rows (`--polars-venv`): the Spark
# engine (g) needs pandas, which the `spark` extra installs here.
VENV = ROOT / ".venv"


def dagster_cmd(cli: str, first: dt.date, last: dt.date, selection: str, venv: Path = VENV) -> list[str]:
    window = f"{first.isoformat()}...{last.isoformat()}"
    venv = venv / "bin"
    if cli == "dg":
        return [str(venv / "dg"), "launch", "--assets", selection, "--partition-range", window]
    return [str(venv / "dagster"), "asset", "materialize", "-m", "retail_lakehouse.definitions",
            "--select", selection, "--partition-range", window]


def fresh_instance(run_dir: Path, code: Path) -> Path:
    """A fresh default instance: an empty DAGSTER_HOME holding the project's dagster.yaml."""
    home = run_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(code / "dagster.yaml", home / "dagster.yaml")
    return home


def _base_env(code: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETAIL_LAKEHOUSE_", "DAGSTER_"))}
    env["PYTHONPATH"] = str(code)
    return env


def dagster_env(code: Path, home: Path, landing: Path, lake: Path, first: dt.date) -> dict[str, str]:
    env = _base_env(code)
    env.update(
        DAGSTER_HOME=str(home),
        RETAIL_LAKEHOUSE_LANDING_ROOT=str(landing),
        RETAIL_LAKEHOUSE_LAKE_ROOT=str(lake),
        RETAIL_LAKEHOUSE_START_DATE=first.isoformat(),
        RETAIL_LAKEHOUSE_TOKEN_KEY=BENCH_TOKEN_KEY,
    )
    return env


def plain_env(code: Path) -> dict[str, str]:
    env = _base_env(code)
    env.update(RETAIL_LAKEHOUSE_TOKEN_KEY=BENCH_TOKEN_KEY, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)
    return env


def python_cmd(module: str, landing: Path, out: Path, first: dt.date, last: dt.date, venv: Path = VENV) -> list[str]:
    return [str(venv / "bin" / "python"), "-m", module, "--landing", str(landing), "--out", str(out),
            "--first", first.isoformat(), "--last", last.isoformat()]


# --- the code under test ---------------------------------------------------------------------------


def snapshot(workdir: Path, head: bool = False) -> Path:
    """A copy of `retail_lakehouse/`, `dagster.yaml` and `pyproject.toml` (the working tree's, or with `head` the last commit's) and of
    the working tree's `bench/`, which every process of the run imports (PYTHONPATH and working
    directory), so that all rounds measure the same code while others keep editing the tree."""
    code = workdir / "code"
    if code.exists():
        shutil.rmtree(code)
    code.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    if head:
        archive = subprocess.run(["git", "archive", "HEAD", "retail_lakehouse", "dagster.yaml", "pyproject.toml"], cwd=ROOT,
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
    else:
        shutil.copytree(ROOT / "retail_lakehouse", code / "retail_lakehouse", ignore=ignore)
        shutil.copy(ROOT / "dagster.yaml", code / "dagster.yaml")
        # `dg launch` finds the project (its [tool.dg] table) from the working directory.
        shutil.copy(ROOT / "pyproject.toml", code / "pyproject.toml")
    shutil.copytree(ROOT / "bench", code / "bench", ignore=ignore)
    return code


def preflight(code: Path, landing: Path, first: dt.date, workdir: Path, cli: str, venv: Path = VENV) -> str | None:
    """Why the pipeline does not run from `code`, or None: the backfill CLI over the first two days,
    on a throwaway instance and lakehouse (others may be mid-edit; a broken tree fails here, in
    seconds, rather than after the first long round)."""
    probe = workdir / "preflight"
    shutil.rmtree(probe, ignore_errors=True)
    home = fresh_instance(probe, code)
    env = dagster_env(code, home, landing, probe / "lake", first)
    check = [str(venv / "bin" / "python"), "-c", "import retail_lakehouse; print(retail_lakehouse.__file__)"]
    done = subprocess.run(check, env=env, cwd=code, capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip().startswith(str(code)):
        return f"retail_lakehouse imports from {done.stdout.strip() or '?'}, not from the snapshot {code}"
    m = timed(dagster_cmd(cli, first, first + dt.timedelta(days=1), SELECTION, venv), env, probe / "logs", 900, code)
    if not m.ok:
        return m.error
    shutil.rmtree(probe, ignore_errors=True)
    return None


def _venv_note(venv: Path) -> str:
    """`.venv-bench` (pandas -): the virtualenv, and the pandas version it holds, whose presence
    costs every CLI run ~1 s of start-up (pandera imports it)."""
    ask = "from importlib.metadata import version\ntry: print(version('pandas'))\nexcept Exception: print('-')"
    found = subprocess.run([str(venv / "bin" / "python"), "-c", ask], capture_output=True, text=True).stdout.strip() or "?"
    name = venv.relative_to(ROOT) if venv.is_relative_to(ROOT) else venv
    return f"`{name}` (pandas {found})"


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "retail_lakehouse"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"
    return f"git {head}" + (" + uncommitted changes in retail_lakehouse/" if dirty else "")


# --- data -----------------------------------------------------------------------------------------


def generate(workdir: Path, code: Path, scale: float, days: int, start: dt.date, seed: int) -> Path:
    """The drops, generated once per (scale, days, start, seed); the generator is deterministic."""
    landing = workdir / f"landing-scale{scale:g}-days{days}-{start:%Y%m%d}-seed{seed}"
    marker = landing / ".bench-complete"
    if marker.exists():
        print(f"drops: reusing {landing}")
        return landing
    if landing.exists():
        shutil.rmtree(landing)
    cmd = [str(ROOT / ".venv" / "bin" / "python"), "-m", "retail_lakehouse.generator", "--out", str(landing),
           "--start", start.isoformat(), "--days", str(days), "--seed", str(seed), "--scale", f"{scale:g}"]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=code, env=_base_env(code))
    marker.write_text(json.dumps({"scale": scale, "days": days, "start": start.isoformat(), "seed": seed}))
    print(f"drops: generated in {time.perf_counter() - started:.1f} s")
    return landing


def cut_copy(landing: Path, variant: str, lines: int = 5) -> Path:
    target = landing.with_name(f"{landing.name}-cut{lines}-{variant}")
    marker = target / ".bench-complete"
    if not marker.exists():
        if target.exists():
            shutil.rmtree(target)
        keep = frozenset({"customer", "product", "store"}) if variant == "dims-whole" else frozenset()
        cut_landing(landing, target, lines, keep)
        marker.write_text(variant)
    return target


# --- the harness ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="generator scale (1 = ~1M sales lines a year)")
    parser.add_argument("--days", type=int, default=365, help="business days to generate and backfill (default 365)")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2025, 6, 1), help="first day (default 2025-06-01)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--only", default=None,
                        help=f"implementations to run, of {','.join(ORDER)} (default: all, (b) as --fixed says)")
    parser.add_argument("--fixed", choices=("whole", "all", "both"), default="whole",
                        help="(b): 5 clean records per file with dimensions whole (b), every file cut (b_all), or both")
    parser.add_argument("--cli", choices=("auto", "dagster", "dg"), default="auto",
                        help="backfill command: auto = the README's (`dagster asset materialize` or `dg launch`)")
    parser.add_argument("--polars-venv", type=Path, default=VENV,
                        help="virtualenv of the Polars engine's rows (a), (b), (c) and (d); the others run in "
                        ".venv, where the Spark engine finds pandas. make bench: .venv-bench, the project "
                        "without extras, as make setup installs it (no pandas)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench",
                        help="drops and per-run instances/lakehouses (default data/bench; e.g. a tmp dir)")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "data" / "bench",
                        help="report.md, results.json (every scale run so far), scaling.png")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="per process, seconds")
    parser.add_argument("--keep", action="store_true", help="keep each run's lakehouse, instance and outputs")
    parser.add_argument("--code", choices=("snapshot", "head", "live"), default="snapshot",
                        help="code under test: a snapshot of the working tree taken at the start (default), "
                             "the last commit (git archive HEAD), or the live tree")
    args = parser.parse_args(argv)

    if not TIME.exists():
        print("/usr/bin/time is missing: sudo apt-get install -y time", file=sys.stderr)
        return 2
    pos = not args.only or "pos" in args.only.split(",")
    if args.only:
        unknown = set(args.only.split(",")) - set(ORDER) - {"pos"}
        if unknown:
            parser.error(f"unknown implementation(s) {', '.join(sorted(unknown))}: choose from {','.join(ORDER)},pos")
        impls = [i for i in ORDER if i in set(args.only.split(","))]
    else:
        skip = {"whole": {"b_all"}, "all": {"b"}, "both": set()}[args.fixed]
        impls = [i for i in ORDER if i not in skip]
    if "c" in impls and "a" not in impls:
        parser.error("c runs on the instance (a) leaves: include a")
    cli = readme_cli() if args.cli == "auto" else args.cli
    polars_venv = args.polars_venv.absolute()
    if not (polars_venv / "bin" / "python").exists():
        parser.error(f"--polars-venv {polars_venv}: no virtualenv there (make bench creates .venv-bench)")

    from bench import report

    workdir = args.workdir.absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    first = args.start
    last = first + dt.timedelta(days=args.days - 1)
    daily_first = max(first, last - dt.timedelta(days=LATE_DATA_DAYS))
    live, head = args.code == "live", args.code == "head"
    if live:
        code, code_note = ROOT, f"the live working tree ({git_state()})"
    else:
        code = snapshot(workdir, head)
        code_note = (f"`retail_lakehouse/` of the last commit ({git_state().split(' +')[0]})" if head else
                     f"a snapshot of the working tree taken {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC ({git_state()})")
    landing = generate(workdir, code, args.scale, args.days, first, args.seed)
    if any(i in impls for i in ("a", "b", "b_all", "g")):
        for attempt in range(1, 6):
            problem = preflight(code, landing, first, workdir, cli, polars_venv)
            if problem is None:
                break
            print(f"preflight {attempt}: the pipeline does not run from {code}: {problem}", file=sys.stderr)
            if live or head or attempt == 5:
                print("giving up: fix the working tree (others may be mid-edit) and run again", file=sys.stderr)
                return 1
            time.sleep(30)
            code = snapshot(workdir)
            code_note = f"a snapshot of the working tree taken {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC ({git_state()})"
    code_note += f"; (a)-(d) in {_venv_note(polars_venv)}, (e)-(g) in {_venv_note(VENV)}"
    landings = {"a": landing, "c": landing, "d": landing, "e": landing, "f": landing, "g": landing}
    if "b" in impls:
        landings["b"] = cut_copy(landing, "dims-whole")
    if "b_all" in impls:
        landings["b_all"] = cut_copy(landing, "all")
    results = {
        i: ImplResult(i, sales_lines(landings[i], daily_first if i == "c" else first, last)) for i in impls
    }
    runs = workdir / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    load_before = os.getloadavg()
    started = dt.datetime.now(dt.timezone.utc)
    print(f"bench: scale {args.scale:g}, {args.days} days ({first}..{last}), {results[impls[0]].sales_lines:,} sales lines; "
          f"{args.rounds} rounds of {' '.join(impls)}; backfill CLI: {cli}")

    def stop(signum, frame):  # SIGTERM (and SIGINT, even if inherited as ignored) end the run cleanly
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    interrupted = False
    try:
        for r in range(1, args.rounds + 1):
            for impl in impls:
                run_dir = runs / f"r{r}-{'a' if impl == 'c' else impl}"
                log_dir = runs / "logs" / f"r{r}-{impl}"
                if impl in ("a", "b", "b_all", "g"):
                    home = fresh_instance(run_dir, code)
                    env = dagster_env(code, home, landings[impl], run_dir / "lake", first)
                    if impl == "g":
                        env["RETAIL_LAKEHOUSE_ENGINE"] = "spark"
                    cmd = dagster_cmd(cli, first, last, SELECTION, VENV if impl == "g" else polars_venv)
                    agg_path = run_dir / "lake" / "gold" / "agg_daily_sales"
                elif impl == "c":
                    if not results["a"].rounds or not results["a"].rounds[-1].ok:
                        print(f"  round {r} c: skipped, (a) failed")
                        continue
                    env = dagster_env(code, run_dir / "dagster_home", landing, run_dir / "lake", first)
                    cmd = dagster_cmd(cli, daily_first, last, SELECTION, polars_venv)
                    agg_path = run_dir / "lake" / "gold" / "agg_daily_sales"
                else:
                    module = {"d": "bench.lower_bound", "e": "bench.peers_duckdb", "f": "bench.peers_pyspark"}[impl]
                    cmd = python_cmd(module, landing, run_dir / "out", first, last, polars_venv if impl == "d" else VENV)
                    env = plain_env(code)
                    agg_path = run_dir / "out" / "gold" / ("agg_daily_sales.parquet" if impl == "d" else "agg_daily_sales")
                m = timed(cmd, env, log_dir, args.timeout, code)
                results[impl].rounds.append(m)
                note = "" if m.ok else f"  FAILED ({m.exit_status}): {m.error}"
                print(f"  round {r} {impl:5s} {m.wall_s:8.1f} s  {max(m.rss_mb, m.tree_rss_mb):8.0f} MB{note}", flush=True)
                if m.ok and impl not in ("b", "b_all"):
                    try:
                        results[impl].aggs.append(read_agg(agg_path))
                    except Exception as e:  # a missing or unreadable table is a finding, not a crash
                        results[impl].aggs.append(f"unreadable: {type(e).__name__}: {e}"[:200])
                if not args.keep and impl not in ("a",) and run_dir.exists():
                    shutil.rmtree(run_dir)  # (a)'s lakehouse waits for (c)
            if not args.keep:
                for leftover in runs.glob(f"r{r}-*"):
                    shutil.rmtree(leftover, ignore_errors=True)
    except KeyboardInterrupt:
        # Ctrl-C: the running process group has been ended; report what completed.
        interrupted = True
        print("\ninterrupted: reporting the rounds that completed", file=sys.stderr)

    _check_aggs(results)
    stream = None
    if pos and not interrupted:
        stream = pos_backlog(code, runs / "pos", args.timeout)
        print(f"  pos   {stream.get('backlog_s', '?')} s for the backlog" + (f"  FAILED: {stream['error']}" if "error" in stream else ""), flush=True)
    if interrupted:
        code_note += "; INTERRUPTED before the last round completed"
    entry = report.entry(args, first, last, daily_first, cli, results, started, load_before, os.getloadavg(), LABELS, code_note)
    if stream is not None:
        entry["pos"] = stream
    args.results_dir.mkdir(parents=True, exist_ok=True)
    history = report.append_history(args.results_dir / "results.json", entry)
    plot = report.plot(history, args.days, args.results_dir / "scaling.png")
    text = report.markdown(entry, plot)
    (args.results_dir / "report.md").write_text(text)
    print()
    print(text)
    print(f"written: {args.results_dir / 'report.md'}, {args.results_dir / 'results.json'}" + (f", {plot}" if plot else ""))
    return 0


def pos_backlog(code: Path, run_dir: Path, timeout: float) -> dict:
    """The POS stream's measurements (scripts/measure_pos_backlog.py, on the code under test), with
    the script's wall clock and peak memory; {"error": ...} if it failed."""
    out = run_dir / "pos.json"
    cmd = [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "scripts" / "measure_pos_backlog.py"), "--json", str(out)]
    m = timed(cmd, _base_env(code), run_dir / "logs", timeout, code)
    if not m.ok or not out.exists():
        return {"error": m.error or "no output"}
    return {**json.loads(out.read_text()), "wall_s": round(m.wall_s, 1), "rss_mb": round(max(m.rss_mb, m.tree_rss_mb))}


def _check_aggs(results: dict[str, ImplResult]) -> None:
    """Every agg_daily_sales against the first good one of (d) (else of (a)), to the cent."""
    reference, ref_name = None, ""
    for name in ("d", "a"):
        if name in results:
            frames = [f for f in results[name].aggs if not isinstance(f, str)]
            if frames:
                reference, ref_name = frames[0], name
                break
    for impl, res in results.items():
        if impl in ("b", "b_all"):
            res.agg_check = "n/a (other input)"
            continue
        if not res.aggs:
            res.agg_check = "no output"
            continue
        if reference is None:
            res.agg_check = "no reference"
            continue
        verdicts = []
        for frame in res.aggs:
            if isinstance(frame, str):
                verdicts.append(frame)
                continue
            keys, bad, example = compare_agg(reference, frame)
            verdicts.append(f"= ({keys} keys)" if not bad else f"≠ {bad} of {keys} keys ({example})")
        unique = list(dict.fromkeys(verdicts))
        label = "reference" if impl == ref_name else ""
        res.agg_check = "; ".join(unique) + (f" [{label}]" if label else "")


if __name__ == "__main__":
    raise SystemExit(main())
