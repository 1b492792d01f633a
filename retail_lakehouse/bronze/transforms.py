"""Bronze: raw drops as delivered, every source column kept as text (SPEC §3, §4 "Bronze").

Pure functions, no Dagster: bytes in, Polars out. A file that cannot be parsed as a whole raises
`MalformedDrop` with a reason; it is never half-loaded. Reasons never quote file content, because a
payment file's content holds card numbers.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import re

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

LINEAGE_COLUMNS = ("_source_file", "_row_number", "_ingested_at", "drop_date")


class MalformedDrop(ValueError):
    """A whole file that cannot be loaded; `reason` says what is wrong and where."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _decode(data: bytes) -> str:
    if data.isascii():
        # ASCII is valid UTF-8; skipping the validating decoder halves parse time on big drops.
        return data.decode("ascii")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise MalformedDrop(
            f"not UTF-8: byte 0x{data[e.start]:02x} at offset {e.start} (line {line})"
        ) from None


def _check_header(text: str, columns: tuple[str, ...]) -> None:
    first_line = text.split("\n", 1)[0].rstrip("\r").lstrip("\ufeff")
    header = next(csv.reader([first_line]), [])
    if tuple(header) == columns:
        return
    if len(header) == 1 and len(columns) > 1:
        for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if sep in first_line:
                raise MalformedDrop(f"wrong delimiter: the header is separated by {name}s, expected commas")
    missing = [c for c in columns if c not in header]
    unexpected = [c for c in header if c not in columns]
    if not missing and not unexpected:
        raise MalformedDrop(f"wrong header: columns out of order, expected {','.join(columns)}")
    raise MalformedDrop(f"wrong header: missing {missing}, unexpected {unexpected}")


def _check_complete(text: str, width: int) -> None:
    """A file cut off mid-record has no final line break and a short (or open-quoted) last record."""
    if not text or text.endswith("\n"):
        return
    last_start = text.rfind("\n") + 1
    records = list(csv.reader(io.StringIO(text[last_start:])))
    if text.count('"', last_start) % 2 == 1 or not records or len(records[-1]) != width:
        line = text.count("\n") + 1
        raise MalformedDrop(f"truncated: the last record (line {line}) is incomplete and has no line break")


def read_csv_drop(data: bytes, columns: tuple[str, ...]) -> pl.DataFrame:
    """Parse one CSV drop: every column as text (empty = null), plus a 1-based `_row_number`."""
    text = _decode(data)
    _check_header(text, columns)
    _check_complete(text, len(columns))
    bad_rows: list[int | None] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad_rows.append(row.number)
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                # Only an empty field is missing: "N/A", "NULL" or "nan" stay text, as delivered.
                column_types={c: pa.string() for c in columns}, strings_can_be_null=True, null_values=[""]
            ),
        )
    except pa.ArrowInvalid as e:
        # Arrow quotes the offending row; keep only its diagnosis.
        raise MalformedDrop(f"unparseable CSV: {str(e).split(':', 1)[0]}") from None
    if bad_rows:
        where = ", ".join(str(n) for n in bad_rows[:5] if n is not None) or "unknown"
        raise MalformedDrop(
            f"{len(bad_rows)} record(s) with a field count different from the header's "
            f"{len(columns)} (row(s) {where})"
        )
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return _numbered(frame.select(columns))


def _numbered(frame: pl.DataFrame) -> pl.DataFrame:
    """Append `_row_number`: 1-based position of each record in its file."""
    return frame.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("_row_number"))


def read_jsonl_drop(data: bytes, columns: tuple[str, ...]) -> pl.DataFrame:
    """Parse one JSON Lines micro-batch; values kept as delivered text."""
    text = _decode(data)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise MalformedDrop(f"invalid JSON on line {number}: {e.msg}") from None
        if not isinstance(obj, dict):
            raise MalformedDrop(f"line {number} is not a JSON object")
        rows.append([None if obj.get(c) is None else str(obj[c]) for c in columns])
    frame = pl.DataFrame(rows, schema={c: pl.String for c in columns}, orient="row")
    return _numbered(frame)


_NON_DIGITS = re.compile(r"\D")


def tokenize_cards(frame: pl.DataFrame, key: bytes) -> pl.DataFrame:
    """Replace `card_number` with `card_token` (HMAC-SHA256 of its digits, hex) and `card_last4`.

    PCI-DSS (seed 004): the full number never reaches a table. A keyed HMAC, not a plain hash: the
    card number space is small enough to brute-force an unkeyed hash.
    """
    if not key:
        raise ValueError("the card-token key is empty")
    digits = [None if v is None else _NON_DIGITS.sub("", v) or None for v in frame.get_column("card_number").to_list()]
    tokens = [None if d is None else hmac.new(key, d.encode(), hashlib.sha256).hexdigest() for d in digits]
    last4 = [None if d is None else d[-4:] for d in digits]
    position = frame.columns.index("card_number")
    out = frame.drop("card_number").insert_column(position, pl.Series("card_token", tokens, dtype=pl.String))
    return out.insert_column(position + 1, pl.Series("card_last4", last4, dtype=pl.String))


def with_lineage(frame: pl.DataFrame, source_file: str, drop_date: dt.date, ingested_at: dt.datetime) -> pl.DataFrame:
    """Add the bronze lineage columns (`_row_number` is already there, from the parser)."""
    return frame.with_columns(
        pl.lit(source_file, dtype=pl.String).alias("_source_file"),
        pl.lit(ingested_at, dtype=pl.Datetime("us", "UTC")).alias("_ingested_at"),
        pl.lit(drop_date, dtype=pl.Date).alias("drop_date"),
    ).select(*[c for c in frame.columns if c != "_row_number"], *LINEAGE_COLUMNS)


def bronze_columns(columns: tuple[str, ...]) -> tuple[str, ...]:
    """A source's delivered columns as bronze stores them: `card_number` never, its token instead."""
    out: list[str] = []
    for c in columns:
        out.extend(("card_token", "card_last4") if c == "card_number" else (c,))
    return tuple(out)


def empty_bronze(columns: tuple[str, ...]) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {c: pl.String() for c in bronze_columns(columns)}
    schema.update(
        _source_file=pl.String(), _row_number=pl.Int64(), _ingested_at=pl.Datetime("us", "UTC"), drop_date=pl.Date()
    )
    return pl.DataFrame(schema=schema)
