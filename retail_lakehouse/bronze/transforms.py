"""Bronze: raw drops as delivered, every source column kept as text (SPEC §3, §4 "Bronze").

Pure functions, no Dagster: bytes in, Polars out. A file that cannot be parsed as a whole raises
`MalformedDrop` with a reason; it is never half-loaded. Reasons never quote file content, because a
payment file's content holds card numbers; the few header cells a reason names are masked first.

PCI (seed 004): a card number typed into any text column is masked by the readers, so it never
reaches a table, whatever column it was typed into (`card_number` itself is tokenized instead).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

LINEAGE_COLUMNS = ("_source_file", "_row_number", "_ingested_at", "drop_date")

# Reasons land in a table, the run log and the UI: short enough to read in one line.
MAX_REASON_CHARS = 200
# No column of any source legitimately holds this much; a longer field is an unclosed quote that
# swallowed records, or a blob pasted into a cell. It is also Python csv's default limit, so the
# tools that produced or will re-read the file choke on it too.
MAX_FIELD_BYTES = 128 * 1024
# A header is a few hundred bytes; a first line longer than this is data, or not a CSV at all.
_MAX_HEADER_BYTES = 64 * 1024
CARD_MASK_PREFIX = "[card ####"
# Drops parsed at once: Arrow's CSV reader and Polars release the GIL, so a window's files parse on
# every core (a year of sales drops at scale 1: 2.4 s on one thread, 1.1 s on four, on 2 cores), and
# reads from ADLS overlap their waits on the network.
PARSE_THREADS = 4


class MalformedDrop(ValueError):
    """A whole file that cannot be loaded; `reason` says what is wrong and where.

    The reason is made safe on the way in (card numbers masked, printable, at most
    `MAX_REASON_CHARS`), so no caller can store or log an unsafe one.
    """

    def __init__(self, reason: str):
        reason = safe_text(reason)
        super().__init__(reason)
        self.reason = reason


# Card numbers (PCI). A card number is 13-19 digits, single spaces or dashes allowed between them,
# that pass the Luhn check. Digits glued to a letter or digit, directly or through "-" or "_", are
# part of an identifier: "O2026090100001" and "LOY-20260901-00001" are keys, not cards, and
# masking them would corrupt the keys. The vectorised filter below finds the few values that may
# hold a card; Python decides on those only.
_DIGIT_RUN = re.compile(r"[0-9](?:[ -]?[0-9])*")
_MAY_HOLD_CARD = r"(?:^|[^0-9A-Za-z_-]|(?:^|[^0-9A-Za-z])[-_])[0-9](?:[ -]?[0-9]){12}"


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_at(digits: list[str], i: int, last: int) -> tuple[int, str] | None:
    """(last group, digits) of the longest card number starting at group i, if one does."""
    ends, count = [], 0
    for j in range(i, last + 1):
        count += len(digits[j])
        if count > 19:
            break
        if count >= 13:
            ends.append(j)
    for j in reversed(ends):
        number = "".join(digits[i : j + 1])
        if luhn_ok(number):
            return j, number
    return None


def _glued(ch: str, beyond: str) -> bool:
    """Is a digit run next to `ch` (and `beyond` it) part of an identifier?"""
    return bool(ch) and (_is_ascii_alnum(ch) or (ch in "-_" and bool(beyond) and _is_ascii_alnum(beyond)))


def _mask_run(text: str, start: int, end: int) -> str:
    """The digit run text[start:end] with every card number in it masked."""
    # Groups of digits and the single space or dash after each: a card number is consecutive
    # groups ("4111 1111 1111 1111", maybe followed by more: "… 0127", the expiry date).
    parts = re.split(r"([ -])", text[start:end])
    digits, seps = parts[0::2], parts[1::2] + [""]
    first, last = 0, len(digits) - 1
    if _glued(text[start - 1 : start], text[start - 2 : start - 1]):
        # The first word belongs to the identifier before it ("LOY-20260901-0001 4111…").
        while first <= last and seps[first] == "-":
            first += 1
        first += 1
    if _glued(text[end : end + 1], text[end + 1 : end + 2]):
        while last >= first and seps[last - 1] == "-":
            last -= 1
        last -= 1
    out, i = [d + s for d, s in zip(digits[:first], seps[:first])], first
    while i <= last:
        card = _card_at(digits, i, last)
        if card is None:
            out.append(digits[i] + seps[i])
            i += 1
        else:
            out.append(f"{CARD_MASK_PREFIX}{card[1][-4:]}]{seps[card[0]]}")
            i = card[0] + 1
    out.extend(d + s for d, s in zip(digits[i:], seps[i:]))
    return "".join(out)


def mask_cards_in_text(text: str) -> str:
    """`text` with every card number masked as `[card ####1234]` (the last four digits only)."""
    pieces, pos = [], 0
    for m in _DIGIT_RUN.finditer(text):
        if m.end() - m.start() < 13:
            continue
        pieces.append(text[pos:m.start()])
        pieces.append(_mask_run(text, m.start(), m.end()))
        pos = m.end()
    if not pieces:
        return text
    pieces.append(text[pos:])
    return "".join(pieces)


def mask_card_numbers(frame: pl.DataFrame, skip: tuple[str, ...] = ()) -> pl.DataFrame:
    """Mask card numbers in every text column of `frame` but `skip`.

    One vectorised scan of every column at once; only the distinct values it flags (none, in clean
    data) go through Python, and go back in with one vectorised replace per column.
    """
    names = [n for n, t in frame.schema.items() if t == pl.String and n not in skip]
    if not names or frame.is_empty():
        return frame
    flagged = frame.select(pl.col(n).str.contains(_MAY_HOLD_CARD).any() for n in names).row(0, named=True)
    updates = []
    for name in (n for n in names if flagged[n]):
        column = frame.get_column(name)
        old = column.filter(column.str.contains(_MAY_HOLD_CARD)).unique().to_list()
        changed = {o: n for o, n in ((o, mask_cards_in_text(o)) for o in old) if o != n}
        if changed:
            updates.append(column.replace(list(changed), list(changed.values())))
    return frame.with_columns(updates) if updates else frame


def safe_text(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """Text fit for a reason, a log line or metadata: cards masked, printable, at most `limit`."""
    text = mask_cards_in_text(text)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    if len(text) > limit:
        # Drop a digit run the cut went through: its head could read as a different card number.
        text = text[: limit - 1].rstrip("0123456789 -") + "…"
    return text


def _line_at(data: bytes, offset: int) -> int:
    """1-based line of a byte offset, whichever of LF, CRLF or CR ends the lines."""
    lf, cr, crlf = data.count(b"\n", 0, offset), data.count(b"\r", 0, offset), data.count(b"\r\n", 0, offset)
    return lf + cr - crlf + 1


_NON_SPACE = re.compile(rb"\S")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"


def _check_bytes(data: bytes) -> None:
    """What is wrong with the file as a whole, before reading it as CSV."""
    if not _NON_SPACE.search(data, len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0):
        raise MalformedDrop("empty file: no header row" + (" (0 bytes)" if not data else " (only whitespace)"))
    if data.startswith(_UTF16_BOMS):
        raise MalformedDrop("UTF-16 encoded (byte-order mark at offset 0): re-export the file as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise MalformedDrop(
            f"binary content: NUL byte at offset {nul} (line {_line_at(data, nul)}); expected a UTF-8 text CSV"
        )
    _check_utf8(data)


def _check_utf8(data: bytes) -> None:
    if data.isascii():
        # ASCII is valid UTF-8, and the check costs a fraction of a validating decode.
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedDrop(
            f"not UTF-8: byte 0x{data[e.start]:02x} at offset {e.start} (line {_line_at(data, e.start)})"
        ) from None


def _decode(data: bytes) -> str:
    if data.isascii():
        return data.decode("ascii")
    _check_utf8(data)
    return data.decode("utf-8")


_COLUMN_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]{0,39}")


def _cells(cells: list[str]) -> str:
    """Header cells for a reason: only those that read as column names, so never a data value."""
    shown = [repr(c) for c in cells if _COLUMN_LIKE.fullmatch(c) and not re.search(r"[0-9]{5}", c)]
    hidden = len(cells) - len(shown)
    listed = ", ".join(shown[:5]) + (f", +{len(shown) - 5} more" if len(shown) > 5 else "")
    if hidden:
        listed += (", " if listed else "") + f"{hidden} cell(s) that are not column names"
    return f"[{listed}]"


def _expected(columns: tuple[str, ...]) -> str:
    return ",".join(columns[:4]) + (",…" if len(columns) > 4 else "")


def _header_end(data: bytes) -> int:
    """Offset of the line break ending the header row (the file's length if there is none)."""
    ends = [i for i in (data.find(b"\n", 0, _MAX_HEADER_BYTES), data.find(b"\r", 0, _MAX_HEADER_BYTES)) if i >= 0]
    if ends:
        return min(ends)
    if len(data) > _MAX_HEADER_BYTES:
        raise MalformedDrop(
            f"wrong header: the first line is longer than {_MAX_HEADER_BYTES // 1024} KB, so it is not a header row"
        )
    return len(data)


def _header_line(data: bytes) -> str:
    return data[: _header_end(data)].removeprefix(_UTF8_BOM).decode("utf-8", errors="replace")


def _check_header(data: bytes, columns: tuple[str, ...]) -> None:
    first_line = _header_line(data)
    try:
        header = next(csv.reader([first_line]), [])
    except csv.Error as e:
        raise MalformedDrop(f"wrong header: the first line is not a CSV row ({e})") from None
    if tuple(header) == columns:
        return
    if len(header) == 1 and len(columns) > 1:
        for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if sep in first_line:
                raise MalformedDrop(f"wrong delimiter: the header is separated by {name}s, expected commas")
    named = [c for c in header if c in columns]
    if not named:
        # Most likely a file delivered without its header: the first line is data (a payment's
        # holds a card number), so none of it is quoted.
        raise MalformedDrop(
            f"wrong header: no header row, the first line names none of the {len(columns)} expected "
            f"columns ({_expected(columns)}); add the header row"
        )
    duplicated = sorted({c for c in named if named.count(c) > 1})
    if duplicated:
        raise MalformedDrop(f"wrong header: duplicated column(s) {duplicated}")
    missing = [c for c in columns if c not in header]
    unexpected = [c for c in header if c not in columns]
    if not missing and not unexpected:
        raise MalformedDrop(f"wrong header: columns out of order, expected {','.join(columns)}")
    raise MalformedDrop(f"wrong header: missing {missing}, unexpected {_cells(unexpected)}")


_QUOTE_CHUNK = 1 << 24  # bytes per numpy pass: bounds the memory of a file that quotes every field


def _is_separator(b: np.ndarray) -> np.ndarray:
    return (b == 0x2C) | (b == 0x0A) | (b == 0x0D)


def _check_quotes(data: bytes) -> None:
    """RFC 4180 quoting: a quote opens a field, closes it, or is doubled inside it; nothing else.

    A quote in the middle of an unquoted field is the one mistake a CSV reader does not notice: it
    can open a field that runs on, swallowing whole records, until another stray quote closes it.
    Paired left to right, the quotes of a well-formed file alternate opening (at a field's start)
    and closing (at its end); a doubled quote is a closing one right before an opening one. numpy
    checks that over the quote positions without a Python loop.
    """
    if b'"' not in data:
        return
    raw = np.frombuffer(data, dtype=np.uint8)
    n, start = len(raw), (len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0)
    seen = 0  # quotes before the chunk: their count gives each quote's place in the pairing
    last_quote = -1
    for lo in range(0, n, _QUOTE_CHUNK):
        q = np.flatnonzero(raw[lo : lo + _QUOTE_CHUNK] == 0x22) + lo
        if not q.size:
            continue
        prev, nxt = raw[np.maximum(q - 1, 0)], raw[np.minimum(q + 1, n - 1)]
        opens_ok = _is_separator(prev) | (prev == 0x22) | (q == start)
        closes_ok = _is_separator(nxt) | (nxt == 0x22) | (q == n - 1)
        opening = (np.arange(seen, seen + q.size) % 2) == 0
        bad = np.flatnonzero(np.where(opening, ~opens_ok, ~closes_ok))
        if bad.size:
            i = int(bad[0])
            line = _line_at(data, int(q[i]))
            if opening[i]:
                raise MalformedDrop(
                    f"stray quote on line {line}: a field that does not start with a quote contains one; "
                    "quote the whole field and double the quotes inside it"
                )
            opened = int(q[i - 1]) if i else last_quote
            raise MalformedDrop(
                f"malformed quoting on line {line}: text follows the quote closing a field opened on "
                f"line {_line_at(data, opened)}"
            )
        seen += q.size
        last_quote = int(q[-1])
    if seen % 2:
        line = _line_at(data, last_quote)
        if not data.endswith((b"\n", b"\r")):
            raise MalformedDrop(f"truncated: the last record (line {line}) is incomplete and has no line break")
        raise MalformedDrop(f"unbalanced quote: the quoted field opened on line {line} is never closed")


def _check_field_sizes(table: pa.Table) -> None:
    for name, column in zip(table.column_names, table.columns):
        lengths = pc.binary_length(column)
        size = pc.max(lengths).as_py()
        if size is not None and size > MAX_FIELD_BYTES:
            row = pc.index(pc.greater(lengths, MAX_FIELD_BYTES), True).as_py() + 1
            raise MalformedDrop(
                f"field too large: column {name} of data row {row} is {size:,} bytes, over the "
                f"{MAX_FIELD_BYTES // 1024} KB limit (an unclosed quote, or a blob pasted into a cell?)"
            )


# A drop as its parser returns it: every column as text, no `_row_number` yet, and card numbers NOT
# yet masked. `bronze_table` masks and numbers a month of them at once (per file, the small-frame
# calls cost more than the data: a year of sales drops at scale 1 parsed in 1.7 s that way, 0.8 s
# so); `read_csv_drop` and `read_jsonl_drop` do it for one file.
Parsed = pa.Table | pl.DataFrame


def read_csv_drop(data: bytes, columns: tuple[str, ...], unmasked: tuple[str, ...] = ("card_number",)) -> pl.DataFrame:
    """Parse one CSV drop: every column as text (empty = null), plus a 1-based `_row_number`.

    LF, CRLF and CR line endings (also mixed) all end records, as every CSV reader treats them.
    Card numbers are masked in every column but `unmasked` (the one the caller tokenizes).
    """
    return _numbered(mask_card_numbers(_polars(parse_csv_drop(data, columns)), skip=unmasked))


def parse_csv_drop(data: bytes, columns: tuple[str, ...]) -> pa.Table:
    """One CSV drop's records as text (`read_csv_drop`'s rules), card numbers not masked (`Parsed`)."""
    _check_bytes(data)
    _check_header(data, columns)
    _check_quotes(data)
    if not _NON_SPACE.search(data, _header_end(data)):
        # Header only: an empty day, valid. (Arrow refuses a header without a line break.)
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    bad_rows: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad_rows.append(row.number)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
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
        # Arrow numbers records from the header (1); bronze's `_row_number` from the first data row.
        last_record = table.num_rows + len(bad_rows) + 1
        if bad_rows[-1] == last_record and not data.endswith((b"\n", b"\r")):
            line = _line_at(data, len(data))
            raise MalformedDrop(f"truncated: the last record (line {line}) is incomplete and has no line break")
        where = ", ".join(str(n - 1) for n in bad_rows[:5] if n > 0) or "unknown"
        raise MalformedDrop(
            f"{len(bad_rows)} record(s) with a field count different from the header's "
            f"{len(columns)} (data row(s) {where}{', …' if len(bad_rows) > 5 else ''})"
        )
    if table.column_names != list(columns):
        table = table.select(list(columns))
    if len(data) > MAX_FIELD_BYTES:
        # A smaller file cannot hold a field that large; a year is thousands of small files.
        _check_field_sizes(table)
    return table


def _polars(parsed: Parsed) -> pl.DataFrame:
    frame = pl.from_arrow(parsed) if isinstance(parsed, pa.Table) else parsed
    assert isinstance(frame, pl.DataFrame)
    return frame


def _numbered(frame: pl.DataFrame) -> pl.DataFrame:
    """Append `_row_number`: 1-based position of each record in its file."""
    # Eager, not an expression: one query per file is most of a small file's parse.
    return frame.hstack([pl.Series("_row_number", np.arange(1, frame.height + 1, dtype=np.int64))])


# What only the line-by-line parse reads as `json.loads` does, checked on the bytes (a regular
# expression over a whole batch costs more than parsing it): a raw control character, which
# `json.loads` refuses; a lone CR, or a character `str.splitlines` breaks a line at but the native
# readers do not (U+0085, U+2028, U+2029); a byte-order mark; an escaped surrogate.
_CONTROL_BYTES = bytes(b for b in range(0x20) if b not in b"\n\r")
_LINE_BREAKS_INSIDE = ("\x85".encode(), "\u2028".encode(), "\u2029".encode(), "\ufeff".encode())
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _needs_line_by_line(raw: bytes) -> bool:
    return (
        len(raw.translate(None, _CONTROL_BYTES)) != len(raw)
        or raw.count(b"\r") != raw.count(b"\r\n")
        or (not raw.isascii() and any(mark in raw for mark in _LINE_BREAKS_INSIDE))
        or (b"\\u" in raw and _ESCAPED_SURROGATE.search(raw) is not None)
    )


def _jsonl_exact_types(kind: pa.DataType) -> bool:
    # Text and integers print as `str(json.loads(...))` prints them; pyarrow infers timestamps and
    # dates only from text, whose delivered form the String read keeps. Anything else (true,
    # 2.50, 1e2, an object, a list) does not print the same: it goes line by line.
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind) \
        or pa.types.is_timestamp(kind) or pa.types.is_date(kind)


def _jsonl_vectorised(raw: bytes, columns: tuple[str, ...]) -> pl.DataFrame | None:
    """The batch as the line-by-line parse reads it, in two native reads that release the GIL;
    None when they could read it otherwise than `json.loads` per line does.

    pyarrow is the referee: it refuses what `json.loads` refuses (a duplicate key, a line that is
    not an object, a column whose values change type) and says each column's JSON type; the values
    come from Polars as delivered text. Both must see one row per non-blank line (two objects on a
    line are an error line by line). `raw` is UTF-8 (checked by `_decode`).
    """
    if _needs_line_by_line(raw):
        return None
    lines = sum(1 for line in raw.split(b"\n") if line.strip())
    if not lines:
        return None
    try:
        inferred = pajson.read_json(pa.BufferReader(raw))
        if inferred.num_rows != lines or not all(_jsonl_exact_types(inferred.schema.field(c).type) for c in columns if c in inferred.column_names):
            return None
        frame = pl.read_ndjson(raw, schema={c: pl.String for c in columns})
    except (pa.ArrowException, pl.exceptions.PolarsError):
        return None
    return frame if frame.height == lines else None


# The native readers cost ~1 ms a batch whatever its size, `json.loads` ~4 µs a line: below about
# this many bytes (~500 lines of POS events) line by line is faster. A stream run's micro-batches of
# a few events each are far below it: a run of 5,000 took 9.0-9.6 s natively, 4.5-5.1 s line by line.
NATIVE_JSONL_BYTES = 64 * 2**10


def read_jsonl_drop(data: bytes, columns: tuple[str, ...]) -> pl.DataFrame:
    """Parse one JSON Lines micro-batch; values kept as delivered text, card numbers masked."""
    return _numbered(mask_card_numbers(parse_jsonl_drop(data, columns)))


def parse_jsonl_drop(data: bytes, columns: tuple[str, ...]) -> pl.DataFrame:
    """One JSON Lines batch's values as text (`read_jsonl_drop`'s rules), card numbers not masked."""
    text = _decode(data)
    frame = _jsonl_vectorised(data, columns) if len(data) >= NATIVE_JSONL_BYTES else None
    return _jsonl_line_by_line(text, columns) if frame is None else frame


def _jsonl_line_by_line(text: str, columns: tuple[str, ...]) -> pl.DataFrame:
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
    return pl.DataFrame(rows, schema={c: pl.String for c in columns}, orient="row")


_NON_DIGITS = re.compile(r"\D")


def tokenize_cards(frame: pl.DataFrame, key: bytes) -> pl.DataFrame:
    """Replace `card_number` with `card_token` (HMAC-SHA256 of its digits, hex) and `card_last4`.

    PCI-DSS (seed 004): the full number never reaches a table. A keyed HMAC, not a plain hash: the
    card number space is small enough to brute-force an unkeyed hash.
    """
    if not key:
        raise ValueError("the card-token key is empty")
    # Each distinct card once: a customer pays with the same card again and again.
    cards = frame.get_column("card_number")
    distinct = cards.drop_nulls().unique()
    digits = [_NON_DIGITS.sub("", v) or None for v in distinct.to_list()]
    tokens = [None if d is None else hmac.new(key, d.encode(), hashlib.sha256).hexdigest() for d in digits]
    last4 = [None if d is None else d[-4:] for d in digits]
    position = frame.columns.index("card_number")
    out = frame.drop("card_number").insert_column(
        position, cards.replace_strict(distinct, pl.Series(tokens, dtype=pl.String), default=None).alias("card_token")
    )
    return out.insert_column(position + 1, cards.replace_strict(distinct, pl.Series(last4, dtype=pl.String), default=None).alias("card_last4"))


def bronze_table(
    drops: Sequence[tuple[Parsed, str, dt.date]],
    columns: tuple[str, ...],
    ingested_at: dt.datetime,
    unmasked: tuple[str, ...] = ("card_number",),
) -> pl.DataFrame:
    """The bronze rows of parsed drops (as their parser returns them, a source file, a drop date):
    card numbers masked in every column but `unmasked` (the one the caller tokenizes), and the
    lineage columns; a source's empty table when there are none.

    Masking, row numbers and lineage are one operation each over the concatenated rows: per file,
    the small-frame calls cost more than the data when a year is hundreds of files per source.
    """
    loaded = [(parsed, path, day) for parsed, path, day in drops if len(parsed)]
    if not loaded:
        return empty_bronze(columns)
    parts = [parsed for parsed, _, _ in loaded]
    if all(isinstance(p, pa.Table) for p in parts):
        data = _polars(pa.concat_tables(parts))
    else:
        data = pl.concat([_polars(p) for p in parts], how="vertical")
    data = mask_card_numbers(data, skip=unmasked)
    rows = [len(p) for p in parts]
    lineage = pl.DataFrame(
        {
            "_source_file": [path for _, path, _ in loaded],
            "drop_date": pl.Series([day for _, _, day in loaded], dtype=pl.Date),
            "rows": rows,
        }
    ).select(pl.exclude("rows").repeat_by("rows").explode())
    numbers = pl.Series("_row_number", np.concatenate([np.arange(1, n + 1, dtype=np.int64) for n in rows]))
    return data.hstack([*lineage, numbers]).with_columns(
        pl.lit(ingested_at, dtype=pl.Datetime("us", "UTC")).alias("_ingested_at")
    ).select(*data.columns, *LINEAGE_COLUMNS)


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
