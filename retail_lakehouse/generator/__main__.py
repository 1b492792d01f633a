"""CLI: python -m retail_lakehouse.generator --out DIR --start YYYY-MM-DD --days N --seed S --scale X"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from retail_lakehouse.generator import generate


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m retail_lakehouse.generator",
        description="Write a deterministic, deliberately dirty retail landing zone (SPEC §2).",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("data/landing"), help="landing zone folder (default: data/landing)"
    )
    parser.add_argument(
        "--start", type=_date, default=dt.date(2026, 9, 1), help="first business date (default: 2026-09-01)"
    )
    parser.add_argument("--days", type=int, default=61, help="number of business dates (default: 61)")
    parser.add_argument("--seed", type=int, default=42, help="random seed, >= 0 (default: 42)")
    parser.add_argument(
        "--scale", type=float, default=0.05, help="1.0 = ~1M sales lines a year, 20k customers (default: 0.05)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        summary = generate(args.out, args.start, args.days, seed=args.seed, scale=args.scale)
    except ValueError as e:
        parser.error(str(e))
    print(f"{summary.line()} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
