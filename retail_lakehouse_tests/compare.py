"""Two lakehouses built from the same drops, compared table by table, row for row."""

import datetime as dt
from pathlib import Path

import polars as pl

from retail_lakehouse_tests.conftest import START

# Load times differ between any two runs, whatever the engine; the audit log names each run.
RUN_TIMESTAMPS = ("_ingested_at", "load_timestamp")
NOT_COMPARED = {("ops", "audit_log")}


def _tables(root: Path) -> dict[tuple[str, str], Path]:
    return {(p.parent.name, p.name): p for p in sorted(root.glob("*/*")) if (p / "_delta_log").is_dir()}


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    frame = frame.drop([c for c in RUN_TIMESTAMPS if c in frame.columns])
    return frame.sort([c for c, t in frame.schema.items() if not isinstance(t, (pl.List, pl.Struct))], nulls_last=True)


def assert_same_lakehouse(expected_root: Path, actual_root: Path) -> dict[tuple[str, str], int]:
    expected, actual = _tables(expected_root), _tables(actual_root)
    assert sorted(actual) == sorted(expected)
    rows = {}
    for key in sorted(set(expected) - NOT_COMPARED):
        want, got = _sorted(pl.read_delta(str(expected[key]))), _sorted(pl.read_delta(str(actual[key])))
        assert got.schema == want.schema, key
        assert got.equals(want), f"{'/'.join(key)} differs"
        rows[key] = want.height
    return rows


def run_as_users_do(lake, days: int) -> list[bool]:
    # The later days first, then the earlier ones (loaded out of order), then a 02:00-shaped run:
    # the last day and its 30-day late window, which reaches back into partitions both runs wrote.
    # Out of order, customers first delivered on an early day are unknown to later days' facts, so
    # a gate may withhold days and fail the run: what matters is that both builds decide alike.
    last = START + dt.timedelta(days=days - 1)
    cut = START + dt.timedelta(days=days // 4)
    windows = [(cut, last), (START, cut - dt.timedelta(days=1)), (last - dt.timedelta(days=30), last)]
    return [lake.run(first, end, raise_on_error=False).success for first, end in windows]
