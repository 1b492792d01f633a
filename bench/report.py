"""The benchmark's outputs: one JSON entry per run (appended to results.json, so the scaling plot
covers every scale run so far), the Markdown table with the issue's targets, the scaling plot."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

MIB_PER_GB = 1024  # memory targets in GiB; the table shows MiB ("MB")
PLOTTED = ("a", "c", "d", "e", "f", "g")
COLORS = {"a": "C0", "c": "C1", "d": "C2", "e": "C3", "f": "C4", "g": "C5"}  # (b) is a fixed cost over a few lines: per-line figures mean nothing


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    # pandas: with it installed, pandera imports it in every run (~1 s of a CLI start-up); "-" is what `make setup` gives.
    for name in ("dagster", "polars", "deltalake", "duckdb", "pyspark", "pandera", "pandas"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


def entry(args, first, last, daily_first, cli, results, started, load_before, load_after, labels, code_note="") -> dict:
    impls = {}
    for name, res in results.items():
        ok = [m for m in res.rounds if m.ok]
        impls[name] = {
            "label": labels[name],
            "walls": [round(m.wall_s, 2) for m in res.rounds],
            "loads": [round(m.load, 2) for m in res.rounds],
            "rss_rounds": [round(m.rss_mb, 1) for m in res.rounds],
            "tree_rss_rounds": [round(m.tree_rss_mb, 1) for m in res.rounds],
            "ok": [m.ok for m in res.rounds],
            "errors": [m.error for m in res.rounds if not m.ok],
            "median": round(res.median(), 2) if res.median() is not None else None,
            "sales_lines": res.sales_lines,
            "best": round(min(m.wall_s for m in ok), 2) if ok else None,
            "rss_mb": round(max(m.rss_mb for m in ok), 1) if ok else None,
            "tree_rss_mb": round(max(m.tree_rss_mb for m in ok), 1) if ok else None,
            "agg_check": res.agg_check,
        }
    return {
        "when": started.isoformat(timespec="seconds"),
        "scale": args.scale,
        "days": args.days,
        "first": first.isoformat(),
        "last": last.isoformat(),
        "daily_window": f"{daily_first.isoformat()}..{last.isoformat()}",
        "seed": args.seed,
        "rounds": args.rounds,
        "cli": cli,
        "code": code_note,
        "cores": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "python": platform.python_version(),
        "versions": _versions(),
        "impls": impls,
    }


def append_history(path: Path, new: dict) -> list[dict]:
    history = []
    if path.exists():
        try:
            history = json.loads(path.read_text())
        except json.JSONDecodeError:
            path.rename(path.with_suffix(".json.corrupt"))
    history.append(new)
    path.write_text(json.dumps(history, indent=1))
    return history


def _peak(i: dict) -> float | None:
    if i["rss_mb"] is None:
        return None
    return max(i["rss_mb"], i["tree_rss_mb"])


def _failed_floor(i: dict) -> tuple[float | None, float | None]:
    """For an implementation whose every round failed: (shortest failed wall, highest peak RSS of
    the failed rounds). A run that stopped early did less than the whole run, so both are lower
    bounds of what a whole run takes: above a limit, the target fails whatever the rest would cost."""
    if any(i["ok"]) or not i["walls"]:
        return None, None
    peaks = [max(r, t) for r, t in zip(i.get("rss_rounds", []), i.get("tree_rss_rounds", []))]
    return min(i["walls"]), (max(peaks) if peaks else None)


def _bound(label: str, floor: float | None, limit: float, unit: str = "s") -> tuple[str, str]:
    if floor is None:
        return "not measured", "n/a"
    shown = f"{floor:,.0f} MB" if unit == "MB" else f"{floor:.1f} s"
    if floor > limit:
        return (f"every round failed; the failed runs already {'reached' if unit == 'MB' else 'took'} {shown} "
                f"(> {limit:,.0f} {unit})", "FAIL (lower bound)")
    return f"every round failed (after {shown})", "n/a"


def seconds_per_million_lines(history: list[dict], days: int) -> dict[str, list[tuple[float, float]]]:
    """(scale, median seconds per million sales lines) by implementation, sorted by scale: for each
    scale and implementation, its latest successful run with this number of days, so a run of
    some implementations only (`--only g`) does not hide the others' points."""
    latest: dict[str, dict[float, float]] = {}
    for e in history:
        if e["days"] != days:
            continue
        for name, i in e["impls"].items():
            if i["median"] is not None and i["sales_lines"]:
                latest.setdefault(name, {})[e["scale"]] = i["median"] / (i["sales_lines"] / 1e6)  # later entries win
    return {name: sorted(by_scale.items()) for name, by_scale in latest.items()}


def plot(history: list[dict], days: int, out: Path) -> Path | None:
    """Seconds per million sales lines against scale, one line per implementation
    (`seconds_per_million_lines`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("scaling plot skipped: matplotlib is not installed (.venv/bin/pip install matplotlib)")
        return None
    points = seconds_per_million_lines(history, days)
    scales = sorted({s for line in points.values() for s, _ in line})
    fig, ax = plt.subplots(figsize=(8, 5))
    for name in PLOTTED:
        if points.get(name):
            label = next(i["label"] for e in reversed(history) for n, i in e["impls"].items() if n == name)
            ax.plot(*zip(*points[name]), marker="o", label=label, color=COLORS[name])
    ax.set_xscale("log")
    ax.set_yscale("log")
    if scales:
        ax.set_xticks(scales, [f"{s:g}" for s in scales])
        ax.set_xlim(min(scales) / 1.5, max(scales) * 1.5)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("generator scale (1 = ~1M sales lines a year)")
    ax.set_ylabel("wall seconds per million sales lines (median)")
    ax.set_title(f"retail_lakehouse bench, {days} days per run; scales {', '.join(f'{s:g}' for s in scales)}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def targets(e: dict) -> list[tuple[str, str, str]]:
    im = e["impls"]
    med = {k: v["median"] for k, v in im.items()}
    floors = {k: _failed_floor(v) for k, v in im.items()}
    rows = []
    a, d, f = med.get("a"), med.get("d"), med.get("f")
    label = "year (a) ≤ 2×(d) + 10 s"
    if a is not None and d is not None:
        rows.append((label, f"(a) {a:.1f} s vs {2 * d + 10:.1f} s", _verdict(a <= 2 * d + 10)))
    elif "a" in im and d is not None:
        rows.append((label, *_bound(label, floors["a"][0], 2 * d + 10)))
    else:
        rows.append((label, "not measured", "n/a"))
    label = "year (a) ≥ 4× faster than (f)"
    if a is not None and f is not None:
        rows.append((label, f"(f)/(a) = {f / a:.2f}×", _verdict(f / a >= 4)))
    elif "a" in im and f is not None:
        rows.append((label, *_bound(label, floors["a"][0], f / 4)))
    else:
        rows.append((label, "not measured", "n/a"))
    for name, label in (("b", "fixed part (b) < 10 s"), ("b_all", "fixed part (b'), every file cut, < 10 s")):
        if name in med:
            v = med[name]
            rows.append((label, f"{v:.1f} s", _verdict(v < 10)) if v is not None else (label, *_bound(label, floors[name][0], 10)))
    c = med.get("c")
    label = "daily run (c) < 8 s"
    if c is not None:
        rows.append((label, f"{c:.1f} s", _verdict(c < 8)))
    elif "c" in im and floors["c"][0] is not None:
        rows.append((label, *_bound(label, floors["c"][0], 8)))
    else:
        rows.append((label, "not measured" + (" ((a) failed)" if "a" in im and not any(im["a"]["ok"]) else ""), "n/a"))
    if "a" in im:
        peak = _peak(im["a"])
        label = "peak memory (a) < 1.5 GB at scale 1"
        note = "" if e["scale"] == 1 else f" (target is for scale 1; this run: scale {e['scale']:g})"
        if peak is not None:
            ok = None if e["scale"] != 1 else peak < 1.5 * MIB_PER_GB
            rows.append((label, f"{peak:,.0f} MB{note}", _verdict(ok)))
        elif e["scale"] == 1:
            rows.append((label, *_bound(label, floors["a"][1], 1.5 * MIB_PER_GB, "MB")))
        else:
            rows.append((label, f"not measured{note}", "n/a"))
        label = "scale 10 completes under 6 GB"
        if e["scale"] == 10:
            done = bool(im["a"]["ok"]) and all(im["a"]["ok"])
            top = peak if peak is not None else floors["a"][1]
            ok10 = done and top is not None and top < 6 * MIB_PER_GB
            rows.append((label, f"{'completed' if done else 'FAILED'}, {_fmt(top, 0)} MB", _verdict(ok10)))
        else:
            rows.append((label, f"run `make bench SCALE=10` (this run: scale {e['scale']:g})", "n/a"))
    rows += _stream_targets(e.get("pos"))
    return rows


# The cursor holds the fingerprints of the late window's batches (two days), whatever the history:
# at one batch every 5 minutes, 576 names of ~50 bytes.
CURSOR_BOUND_BYTES = 64 * 1024


def _stream_targets(stream: dict | None) -> list[tuple[str, str, str]]:
    backlog, tick, cursor = "POS backlog of 20,000 batches merged < 60 s, exactly once", "sensor tick < 1 s at 100,000 batches", "cursor bounded"
    if not stream:
        return [(t, "not measured", "n/a") for t in (backlog, tick, cursor)]
    if "error" in stream:
        return [(t, f"failed: {stream['error']}"[:200], "FAIL") for t in (backlog, tick, cursor)]
    n, listing = stream["batches"], stream["listing"]
    once = "exactly once" if stream["exactly_once"] else "NOT exactly once"
    return [
        (backlog, f"{n:,} batches in {stream['backlog_s']:.1f} s ({stream['runs']} runs), {once}",
         _verdict(n >= 20_000 and stream["backlog_s"] < 60 and stream["exactly_once"])),
        (tick, f"{stream['regular_tick_s']:.3f} s at {listing:,} batches", _verdict(listing >= 100_000 and stream["regular_tick_s"] < 1)),
        (cursor, f"{stream['cursor_bytes']:,} bytes at {listing:,} batches, {stream['backlog_cursor_bytes']:,} at {n:,} "
         f"(every batch seen, the first design: {stream['first_design_cursor_bytes']:,})",
         _verdict(max(stream["cursor_bytes"], stream["backlog_cursor_bytes"]) <= CURSOR_BOUND_BYTES)),
    ]


def markdown(e: dict, plot_path: Path | None) -> str:
    im = e["impls"]
    d, f = (im.get(k, {}).get("median") for k in ("d", "f"))
    lines = [
        f"# Benchmark: scale {e['scale']:g}, {e['days']} days ({e['first']} .. {e['last']}), seed {e['seed']}",
        "",
        f"{e['when']}; {e['cores']} cores (shared), load average {e['load_before'][0]:.2f} before and "
        f"{e['load_after'][0]:.2f} after; {e['rounds']} interleaved rounds; backfill CLI: `{e['cli']}`; "
        f"daily window (c): {e['daily_window']}. Each row is one whole process (`/usr/bin/time -v`).",
        f"Code: {e.get('code', '')}. Versions: " + ", ".join(f"{k} {v}" for k, v in e["versions"].items()) + f", Python {e['python']}.",
        "",
        "| implementation | wall s per round | median s | best s | sales lines | lines/s | peak RSS MB (time -v) | peak RSS MB (process tree) | ÷ (d) | ÷ (f) | agg_daily_sales vs (d) | load at start |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for i in im.values():
        walls = ", ".join(("%.1f" % w) + ("" if ok else " ✗") for w, ok in zip(i["walls"], i["ok"])) or "—"
        med = i["median"]
        rate = None if not med else i["sales_lines"] / med
        ratio_d = None if not (med and d) else med / d
        ratio_f = None if not (med and f) else med / f
        rss, tree = _fmt(i["rss_mb"], 0), _fmt(i["tree_rss_mb"], 0)
        if i["rss_mb"] is None and i.get("rss_rounds"):  # every round failed: what the failed runs reached
            rss = f"{max(i['rss_rounds']):,.0f} ✗"
            tree = f"{max(i['tree_rss_rounds']):,.0f} ✗"
        lines.append(
            f"| {i['label']} | {walls} | {_fmt(med)} | {_fmt(i.get('best'))} | {i['sales_lines']:,} | {_fmt(rate, 0)} | "
            f"{rss} | {tree} | {_fmt(ratio_d, 2)} | {_fmt(ratio_f, 2)} | {i['agg_check']} | "
            + ", ".join(f"{x:.1f}" for x in i.get("loads", [])) + " |"
        )
    stream = e.get("pos")
    if stream:
        lines += ["", "## POS stream (`scripts/measure_pos_backlog.py`)", ""]
        lines += [stream["table"]] if "table" in stream else [f"failed: {stream.get('error')}"]
        if "wall_s" in stream:
            lines += ["", f"The whole script (generating the batches included): {stream['wall_s']:.1f} s, peak {stream['rss_mb']:,} MB."]
    lines += ["", "## Targets", ""]
    if e["days"] != 365:
        lines += [f"The targets are stated for a year (365 days); this run has {e['days']} days.", ""]
    lines += ["| target | measured | result |", "|---|---|---|"]
    lines += [f"| {t} | {v} | {r} |" for t, v, r in targets(e)]
    errors = [(name, err) for name, i in im.items() for err in i["errors"]]
    if errors:
        lines += ["", "## Failed runs", ""] + [f"- {name}: {err}" for name, err in errors]
    lines += [
        "",
        "## Notes",
        "",
        "- ✗ marks a failed round (its time is shown, but not used: median, best, lines/s and memory are over the successful rounds; "
        "when every round failed, the memory the failed runs reached is shown, and a target they already exceed fails as a lower bound). "
        "The machine is shared: the 1-minute load average at each process's start is in the last column.",
        "- Wall time and peak RSS come from `/usr/bin/time -v` around each process; the process-tree "
        "column samples the RSS of every process of the run's session every 0.2 s (for (f) it includes "
        "the JVM, which `time -v` does not see, because Python does not wait for it).",
        "- lines/s = data lines of the sales drops the run reads (the range's, (c): its window's, (b): the cut files') ÷ median wall.",
        "- agg_daily_sales is compared per (sales_date, sales_channel) on total_revenue (to the cent), "
        "total_quantity, total_orders, total_lines; (c) is the whole table after the daily run.",
        "- (d) runs every transform the pipeline runs, but no asset checks, no Delta commits, no Dagster events.",
        "- (e) and (f) implement the seeds' subset only (customer and sales silver, fact_sales, agg_daily_sales), "
        "under SPEC §4's rules (see bench/peers_duckdb.py and bench/peers_pyspark.py for where they differ from the seed).",
    ]
    if plot_path:
        lines += [f"- Scaling plot (every scale run so far with {e['days']} days): `{plot_path}`."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Re-render report.md and scaling.png from the last entry of results.json."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "bench")
    args = parser.parse_args(argv)
    history = json.loads((args.results_dir / "results.json").read_text())
    last = history[-1]
    plot_path = plot(history, last["days"], args.results_dir / "scaling.png")
    text = markdown(last, plot_path)
    (args.results_dir / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
