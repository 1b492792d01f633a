"""What every implementation of the benchmark shares: the landing zone's drops, the peers' file
vetting, the cut copies of the landing zone, and the agg_daily_sales comparison.

No Dagster here (the peers import this module, and must not pay for importing Dagster).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from retail_lakehouse.sources import SOURCE_COLUMNS

SALES = "sales_returns"
LATE_DATA_DAYS = 30  # SPEC §2: returns and refunds up to 30 days after the order
# The columns of agg_daily_sales compared between implementations, to the cent.
AGG_KEY = ("sales_date", "sales_channel")
AGG_COMPARED = ("total_revenue", "total_quantity", "total_orders", "total_lines")
# The channels of SPEC §4 and the spellings the sources use (retail_lakehouse.silver.rules.CHANNELS).
CHANNELS = {
    "online": "Online", "web": "Online",
    "store": "Store", "in-store": "Store", "instore": "Store", "pos": "Store",
    "mobile": "Mobile", "app": "Mobile", "mobile app": "Mobile",
}
AGE_GROUPS = ("18-25", "26-35", "36-45", "46-55", "56-65", "65+")
GENDERS = ("M", "F", "Other", "Prefer not to say")
PLAIN_DECIMAL = r"[+-]?(?:[0-9]{1,12}(?:\.[0-9]*)?|\.[0-9]+)"  # as silver's money parser accepts
EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"

_CSV_DROP = re.compile(r"^(?P<source>[a-z_]+)_(?P<date>\d{8})_(?P<time>\d{6})\.csv$")


@dataclass(frozen=True, order=True)
class DropFile:
    drop_date: dt.date
    name: str
    path: Path

    @property
    def source_file(self) -> str:
        """As bronze records it in `_source_file`: relative to the landing root."""
        return f"{self.path.parent.name}/{self.name}"


def list_drops(landing: Path, source: str, first: dt.date | None = None, last: dt.date | None = None) -> list[DropFile]:
    """The CSV drops of a source, in delivery order (business date, then stamp), within first..last."""
    out = []
    folder = landing / source
    if not folder.is_dir():
        return out
    for path in folder.iterdir():
        m = _CSV_DROP.match(path.name)
        if not m or m["source"] != source:
            continue
        try:
            day = dt.datetime.strptime(m["date"], "%Y%m%d").date()
        except ValueError:
            continue
        if (first and day < first) or (last and day > last):
            continue
        out.append(DropFile(day, path.name, path))
    return sorted(out)


def vet(path: Path, columns: tuple[str, ...]) -> str | None:
    """Why a drop cannot be loaded whole (SPEC §4 bronze: a broken file is never half-loaded), or None.

    The peers' stand-in for the project's bronze parser: the header must be exactly the source's
    columns, the bytes UTF-8, and the last record must end with a line break. The engines then
    reject a record with the wrong number of fields when they read the file.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not UTF-8 (byte {data[e.start]:#x} at offset {e.start})"
    header, _, rest = text.partition("\n")
    if header.rstrip("\r").lstrip("\ufeff") != ",".join(columns):
        return "wrong header"
    if rest.strip() and not text.endswith(("\n", "\r")):
        return "truncated (no final line break)"
    return None


def loadable(landing: Path, source: str, first: dt.date, last: dt.date) -> tuple[list[DropFile], list[tuple[DropFile, str]]]:
    """(drops that load, (rejected drop, reason))."""
    good, bad = [], []
    for drop in list_drops(landing, source, first, last):
        reason = vet(drop.path, SOURCE_COLUMNS[source])
        if reason:
            bad.append((drop, reason))
        else:
            good.append(drop)
    return good, bad


def data_lines(paths: list[Path]) -> int:
    """Data lines of CSV files (line breaks minus the header's)."""
    total = 0
    for p in paths:
        with open(p, "rb") as f:
            n = f.read().count(b"\n")
        total += max(n - 1, 0)
    return total


def sales_lines(landing: Path, first: dt.date, last: dt.date) -> int:
    """Sales lines delivered in the drops dated first..last (what rows/s counts)."""
    return data_lines([d.path for d in list_drops(landing, SALES, first, last)])


# --- cut copies of the landing zone (the fixed per-partition cost) --------------------------------


_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def _positive(text: str) -> bool:
    return bool(re.fullmatch(PLAIN_DECIMAL, text)) and not text.startswith("-")


def _first_delivered(landing: Path, source: str, clean) -> dict[str, str]:
    """{id: the first business date (YYYY-MM-DD) a drop of `source` holds a clean record of it}."""
    first: dict[str, str] = {}
    columns = SOURCE_COLUMNS[source]
    for drop in list_drops(landing, source):
        for fields in csv.reader(drop.path.read_text(encoding="utf-8", errors="replace").splitlines()[1:]):
            if len(fields) == len(columns) and clean(dict(zip(columns, fields, strict=True))):
                first.setdefault(fields[0], drop.drop_date.isoformat())
    return first


def _clean_customer():
    owner: dict[str, str] = {}  # an email belongs to the first customer delivered with it

    def clean(r: dict) -> bool:
        email = r["email"].strip().lower()
        if not (r["customer_id"] and re.fullmatch(EMAIL, email)):
            return False
        return bool(
            owner.setdefault(email, r["customer_id"]) == r["customer_id"] and r["gender"] in GENDERS
            and r["age_group"] in AGE_GROUPS and _TIMESTAMP.fullmatch(r["created_at"]) and _TIMESTAMP.fullmatch(r["updated_at"])
        )

    return clean


def _clean_product(r: dict) -> bool:
    return bool(r["product_id"] and _TIMESTAMP.fullmatch(r["updated_at"])) and _positive(r["cost"]) and _positive(r["list_price"])


def _clean_records(landing: Path) -> dict:
    """Per source, which records a cut copy keeps: the ones the generator left clean (and sales of
    customers and products delivered before their order date), so that a 5-line day is not 40%
    quarantine or orphans and the fixed-cost run measures the whole pipeline instead of stopping
    at its gate."""
    customers, products = _first_delivered(landing, "customer", _clean_customer()), _first_delivered(landing, "product", _clean_product)

    def sale(r: dict) -> bool:
        day = r["order_ts"][:10]
        return (
            bool(r["order_id"] and r["store_id"] and _TIMESTAMP.fullmatch(r["order_ts"])) and _positive(r["quantity"])
            and customers.get(r["customer_id"], "9999") < day and products.get(r["product_id"], "9999") < day
        )

    return {"sales_returns": sale, **_CLEAN_RECORD}


_CLEAN_RECORD = {
    "payment_refund": lambda r: bool(r["order_id"]) and bool(_TIMESTAMP.fullmatch(r["transaction_ts"]))
    and (not r["refund_amount"] or float(r["refund_amount"]) <= float(r["amount"] or 0)),
    "inventory": lambda r: _positive(r["quantity_on_hand"]),
    "loyalty": lambda r: bool(r["customer_id"]) and _positive(r["points_earned"] or "0") and _positive(r["points_redeemed"] or "0"),
}


def _head_records(data: bytes, records: int, clean=None) -> bytes:
    """The header and the first `records` records of a CSV for which `clean(record as a dict)`
    holds (every record without `clean`); RFC 4180: a line break inside quotes does not end a record."""
    header_end = data.find(b"\n") + 1
    if header_end == 0:
        return data
    columns = next(csv.reader([data[:header_end].decode("utf-8-sig")]))
    out, quotes, start, i = [data[:header_end]], 0, header_end, header_end
    while len(out) <= records:
        j = data.find(b"\n", i)
        if j < 0:
            break
        quotes += data.count(b'"', i, j)
        i = j + 1
        if quotes % 2:
            continue
        record = data[start:i]
        start = i
        if clean is None or _passes(clean, columns, record):
            out.append(record)
    return b"".join(out)


def _passes(clean, columns: list[str], record: bytes) -> bool:
    try:
        fields = next(csv.reader([record.decode("utf-8")]))
        return len(fields) == len(columns) and bool(clean(dict(zip(columns, fields, strict=True))))
    except (StopIteration, UnicodeDecodeError, ValueError, csv.Error):
        return False

def cut_landing(src: Path, dst: Path, lines: int, keep_whole: frozenset[str]) -> None:
    """Copy a landing zone with every drop cut to its header + its first `lines` clean records (JSON
    Lines POS batches to `lines` lines), except the sources in `keep_whole`, which are hard-linked whole. The
    malformed extra drops (stamp 235000, about 20 rows) are linked as they are, so they stay malformed."""
    clean = _clean_records(src)
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        target = dst / folder.name
        target.mkdir(parents=True, exist_ok=True)
        for path in folder.iterdir():
            out = target / path.name
            if out.exists():
                continue
            whole = folder.name in keep_whole or path.name.endswith("_235000.csv")
            if whole:
                try:
                    os.link(path, out)
                    continue
                except OSError:
                    out.write_bytes(path.read_bytes())
                    continue
            data = path.read_bytes()
            if path.suffix == ".jsonl":
                kept = b"".join(data.splitlines(keepends=True)[:lines])
            else:
                kept = _head_records(data, lines, clean.get(folder.name))
            out.write_bytes(kept)


# --- agg_daily_sales: read any implementation's output, compare to the cent ----------------------


def read_agg(path: Path):
    """agg_daily_sales as written by any implementation: a Delta table, a Parquet file, or a
    hive-partitioned Parquet folder; normalized to (key, compared columns) with revenue in cents."""
    import polars as pl

    path = Path(path)
    if (path / "_delta_log").is_dir():
        frame = pl.read_delta(str(path))
    elif path.is_file():
        frame = pl.read_parquet(path)
    else:
        frame = pl.read_parquet(str(path / "**" / "*.parquet"), hive_partitioning=True)
    return frame.select(
        pl.col("sales_date").cast(pl.Date),
        pl.col("sales_channel").cast(pl.String),
        (pl.col("total_revenue").cast(pl.Decimal(38, 2)) * 100).cast(pl.Int64).alias("total_revenue"),
        *[pl.col(c).cast(pl.Int64) for c in AGG_COMPARED[1:]],
    ).sort(AGG_KEY)


def compare_agg(reference, other) -> tuple[int, int, str]:
    """(keys compared, keys that differ, the first difference in words)."""
    import polars as pl

    joined = reference.join(other, on=list(AGG_KEY), how="full", suffix="_o", coalesce=True)
    differs = pl.lit(False)
    for c in AGG_COMPARED:
        differs = differs | pl.col(c).ne_missing(pl.col(f"{c}_o"))
    bad = joined.filter(differs).sort(AGG_KEY)
    example = ""
    if bad.height:
        row = bad.row(0, named=True)
        cols = [c for c in AGG_COMPARED if row[c] != row[f"{c}_o"]]
        def show(c: str, v) -> str:
            return "missing" if v is None else (f"{v / 100:.2f}" if c == "total_revenue" else str(v))
        example = f"{row['sales_date']}/{row['sales_channel']}: " + ", ".join(
            f"{c} {show(c, row[c])} vs {show(c, row[c + '_o'])}" for c in cols
        )
    return joined.height, bad.height, example
