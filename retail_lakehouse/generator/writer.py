"""Writing drops to the landing zone, and the deliberately malformed extra drops."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from retail_lakehouse.generator.reference import (
    MALFORMED_KINDS,
    MALFORMED_STAMP,
    NOT_UTF8_COLUMN,
    NOT_UTF8_TEXT,
    POS_BATCH_STAMPS,
    REGULAR_STAMP,
    SOURCE_COLUMNS,
)

_HELPERS = ("_day", "_stamp")


def _drop_name(source: str, day: dt.date, stamp: str, ext: str = "csv") -> str:
    return f"{source}_{day:%Y%m%d}_{stamp}.{ext}"


def _groups(frame: pl.DataFrame) -> dict[tuple[int, str], tuple[int, int]]:
    """(day, stamp) -> [start, end) row range; the frame is sorted by day, then stamp."""
    if frame.height == 0:
        return {}
    day = frame.get_column("_day").to_numpy()
    stamp = frame.get_column("_stamp").to_numpy()
    change = np.flatnonzero((day[1:] != day[:-1]) | (stamp[1:] != stamp[:-1])) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [frame.height]])
    return {(int(day[a]), str(stamp[a])): (int(a), int(b)) for a, b in zip(starts, ends)}


def write_csv_source(out: Path, source: str, frame: pl.DataFrame, start: dt.date, days: int, daily: bool) -> list[str]:
    """Write a source's drops; a daily source gets a (possibly header-only) drop every day."""
    folder = out / source
    folder.mkdir(parents=True, exist_ok=True)
    groups = _groups(frame)
    if daily:
        for d in range(days):
            groups.setdefault((d, REGULAR_STAMP), (0, 0))
    written = []
    for (d, stamp), (a, b) in sorted(groups.items()):
        name = _drop_name(source, start + dt.timedelta(days=d), stamp)
        frame.slice(a, b - a).drop(_HELPERS).write_csv(folder / name)
        written.append(f"{source}/{name}")
    return written


def write_pos(out: Path, events: pl.DataFrame, start: dt.date, days: int) -> list[str]:
    folder = out / "pos_events"
    folder.mkdir(parents=True, exist_ok=True)
    day = events.get_column("_day").to_numpy()
    batch = events.get_column("_batch").to_numpy()
    key = day * len(POS_BATCH_STAMPS) + batch
    bounds = np.searchsorted(key, np.arange(days * len(POS_BATCH_STAMPS) + 1), side="left")
    body = events.drop("_day", "_batch")
    written = []
    for d in range(days):
        for b, stamp in enumerate(POS_BATCH_STAMPS):
            k = d * len(POS_BATCH_STAMPS) + b
            name = f"pos_events_{start + dt.timedelta(days=d):%Y%m%d}_{stamp}_{b + 1:04d}.jsonl"
            body.slice(int(bounds[k]), int(bounds[k + 1] - bounds[k])).write_ndjson(folder / name)
            written.append(f"pos_events/{name}")
    return written


# --- malformed drops -------------------------------------------------------------------------------

_MALFORMED_SOURCES = tuple(s for s in SOURCE_COLUMNS if s != "store")
_SAMPLE_ROWS = 20


def malformed_plan(rng: np.random.Generator, days: int, with_rows: set[str]) -> list[tuple[str, str, int]]:
    """(kind, source, day) of each malformed extra drop: each kind about once per 30 days, and at
    least once when the window has 4 days or more; never two on one source and day. Only sources
    with rows qualify: a header-only file cannot be truncated or carry a non-UTF-8 name."""
    if days < 4:
        return []
    per_kind = max(1, round(days / 30))
    used: set[tuple[str, int]] = set()
    plan = []
    for kind in MALFORMED_KINDS:
        sources = tuple(s for s in (NOT_UTF8_COLUMN if kind == "not_utf8" else _MALFORMED_SOURCES) if s in with_rows)
        placed = 0
        while placed < per_kind:
            source = sources[int(rng.integers(0, len(sources)))]
            day = int(rng.integers(0, days))
            if (source, day) in used:
                continue
            used.add((source, day))
            plan.append((kind, source, day))
            placed += 1
    return plan


def _content(frame: pl.DataFrame, day: int) -> pl.DataFrame:
    """Rows of the day's regular drop (or of the first day, when the day's drop is short)."""
    own = frame.filter((pl.col("_day") == day) & (pl.col("_stamp") == REGULAR_STAMP))
    if own.height < 2:
        own = frame.filter(pl.col("_day") == frame.get_column("_day").min())
    return own.head(_SAMPLE_ROWS).drop(_HELPERS)


def _truncate(rng: np.random.Generator, text: str, width: int) -> str:
    """Cut the text inside a data record, after a separator, so the record has < width fields."""
    lines = text.split("\n")[:-1]
    candidates = [i for i in range(1, len(lines)) if '"' not in lines[i]]
    cut_line = candidates[-1] if candidates else len(lines) - 1
    row = lines[cut_line]
    commas = [i for i, c in enumerate(row) if c == ","]
    j = int(rng.integers(0, width - 2))
    nxt = commas[j + 1]
    keep = commas[j] + 1 + int(rng.integers(0, nxt - commas[j]))
    return "\n".join(lines[:cut_line]) + "\n" + row[:keep]


def write_malformed(
    out: Path, rng: np.random.Generator, frames: dict[str, pl.DataFrame], start: dt.date, days: int
) -> dict[str, str]:
    written = {}
    with_rows = {s for s, f in frames.items() if f.height > 0}
    for kind, source, day in malformed_plan(rng, days, with_rows):
        columns = SOURCE_COLUMNS[source]
        rows = _content(frames[source], day)
        name = _drop_name(source, start + dt.timedelta(days=day), MALFORMED_STAMP)
        path = out / source / name
        if kind == "wrong_header":
            with_underscore = [c for c in columns if "_" in c]
            column = with_underscore[int(rng.integers(0, len(with_underscore)))]
            if rng.random() < 0.5:
                rows = rows.rename({column: column.replace("_", "")})
            else:
                rows = rows.drop(column)
            data = rows.write_csv().encode("utf-8")
        elif kind == "wrong_delimiter":
            data = rows.write_csv(separator=";").encode("utf-8")
        elif kind == "not_utf8":
            column = NOT_UTF8_COLUMN[source]
            first_row = pl.int_range(pl.len()) == 0
            rows = rows.with_columns(
                pl.when(first_row).then(pl.lit(NOT_UTF8_TEXT[source])).otherwise(pl.col(column)).alias(column)
            )
            data = rows.write_csv().encode("cp1252")
        else:
            data = _truncate(rng, rows.write_csv(), len(columns)).encode("utf-8")
        path.write_bytes(data)
        written[f"{source}/{name}"] = kind
    return written
