"""Bronze parsing pinned on a few hand-written bytes: what loads, what is rejected and why."""

import datetime as dt
import hashlib
import hmac
import json
import random

import polars as pl
import pytest

from retail_lakehouse.bronze import transforms
from retail_lakehouse.bronze.transforms import MalformedDrop, bronze_table, parse_csv_drop, read_csv_drop, read_jsonl_drop, tokenize_cards
from retail_lakehouse.landing import POS_COLUMNS, SOURCE_COLUMNS, Drop

COLS = ("a", "b", "c")


def test_fields_stay_text_as_delivered_and_rows_are_numbered_from_one():
    frame = read_csv_drop(b'a,b,c\n001,"x, y",\n2.50,,"say ""hi"""\n', COLS)
    assert frame.schema == pl.Schema({"a": pl.String, "b": pl.String, "c": pl.String, "_row_number": pl.Int64})
    assert frame.rows() == [("001", "x, y", None, 1), ("2.50", None, 'say "hi"', 2)]


def test_placeholder_words_stay_text_and_only_an_empty_field_is_missing():
    frame = read_csv_drop(b"a,b,c\nN/A,NULL,nan\n,NA,\n", COLS)
    assert frame.rows() == [("N/A", "NULL", "nan", 1), (None, "NA", None, 2)]


def test_quoted_newline_is_one_record():
    frame = read_csv_drop(b'a,b,c\n1,"two\nlines",3\n4,5,6\n', COLS)
    assert frame["b"].to_list() == ["two\nlines", "5"]
    assert frame["_row_number"].to_list() == [1, 2]


def test_header_only_file_is_an_empty_valid_drop():
    assert read_csv_drop(b"a,b,c\n", COLS).height == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"a,x,c\n1,2,3\n", "wrong header: missing ['b'], unexpected ['x']"),
        (b"a;b;c\n1;2;3\n", "wrong delimiter: the header is separated by semicolons, expected commas"),
        (b"a,b,c\n1,M\xfcller,3\n", "not UTF-8: byte 0xfc at offset 9 (line 2)"),
        (b"a,b,c\n1,2,3\n4,5", "truncated: the last record (line 3) is incomplete and has no line break"),
        (b'a,b,c\n1,2,3\n4,5,"six', "truncated: the last record (line 3) is incomplete and has no line break"),
    ],
)
def test_unparseable_file_is_rejected_with_its_reason(data, reason):
    with pytest.raises(MalformedDrop) as e:
        read_csv_drop(data, COLS)
    assert e.value.reason == reason


def test_short_or_long_row_inside_the_file_rejects_the_whole_file_without_quoting_it():
    with pytest.raises(MalformedDrop) as e:
        read_csv_drop(b"a,b,c\n1,2,3\n4111111111111111,5\n7,8,9,10\n", COLS)
    assert "2 record(s) with a field count different from the header's 3" in e.value.reason
    assert "4111" not in e.value.reason


def test_last_record_without_line_break_but_complete_is_accepted():
    assert read_csv_drop(b"a,b,c\n1,2,3\n4,5,6", COLS).height == 2


def test_card_number_becomes_keyed_token_and_last_four_digits():
    frame = pl.DataFrame({"payment_id": ["P1", "P2", "P3"], "card_number": ["4111 1111-1111 1111", None, "  "]})
    out = tokenize_cards(frame, b"k3y")
    assert out.columns == ["payment_id", "card_token", "card_last4"]
    expected = hmac.new(b"k3y", b"4111111111111111", hashlib.sha256).hexdigest()
    assert out.rows() == [("P1", expected, "1111"), ("P2", None, None), ("P3", None, None)]
    assert tokenize_cards(frame, b"other")["card_token"][0] != expected


def test_lineage_columns_follow_the_source_columns_and_each_row_names_its_own_file():
    at = dt.datetime(2026, 9, 2, 1, tzinfo=dt.timezone.utc)
    drops = [
        (parse_csv_drop(b"a,b,c\n1,2,3\n4,5,6\n", COLS), "x/x_20260901_230000.csv", dt.date(2026, 9, 1)),
        (parse_csv_drop(b"a,b,c\n", COLS), "x/x_20260902_230000.csv", dt.date(2026, 9, 2)),  # header only
        (parse_csv_drop(b"a,b,c\n7,8,9\n", COLS), "x/x_20260903_230000.csv", dt.date(2026, 9, 3)),
    ]
    out = bronze_table(drops, COLS, at)
    assert out.columns == ["a", "b", "c", "_source_file", "_row_number", "_ingested_at", "drop_date"]
    assert out.rows() == [
        ("1", "2", "3", "x/x_20260901_230000.csv", 1, at, dt.date(2026, 9, 1)),
        ("4", "5", "6", "x/x_20260901_230000.csv", 2, at, dt.date(2026, 9, 1)),
        ("7", "8", "9", "x/x_20260903_230000.csv", 1, at, dt.date(2026, 9, 3)),
    ]
    assert bronze_table(drops[1:2], COLS, at).schema == bronze_table([], COLS, at).schema
    # A window with no rows has the very schema a loaded one has, so either can be written.
    assert bronze_table([], COLS, at).schema == out.schema


def test_a_month_of_parsed_drops_is_masked_and_numbered_as_each_file_alone_would_be():
    # The referee: each file through read_csv_drop (masked and numbered on its own), then
    # concatenated. bronze_table masks and numbers the parsed files of a month at once.
    rng = random.Random(7)
    cards = ["4111 1111 1111 1111", "5500-0000-0000-0004", "4012888888881881"]
    files = []
    for day in range(1, 6):
        lines = ["payment_id,card_number,note"]
        for i in range(rng.randint(0, 4)):
            note = rng.choice(["", "paid", f"call back {rng.choice(cards)} tomorrow", f"ref LOY-{day:02d}{i}"])
            lines.append(f"P{day}{i},{rng.choice(cards)},{note}")
        files.append(("\n".join(lines) + "\n").encode())
    cols = ("payment_id", "card_number", "note")
    at = dt.datetime(2026, 9, 6, tzinfo=dt.timezone.utc)
    names = [(f"p/p_2026090{d}_230000.csv", dt.date(2026, 9, d)) for d in range(1, 6)]
    out = bronze_table([(parse_csv_drop(f, cols), n, d) for f, (n, d) in zip(files, names)], cols, at)
    each = [read_csv_drop(f, cols).with_columns(_source_file=pl.lit(n), drop_date=pl.lit(d)) for f, (n, d) in zip(files, names)]
    referee = pl.concat(each).select(*cols, *transforms.LINEAGE_COLUMNS[:2], pl.lit(at).alias("_ingested_at"), "drop_date")
    assert out.select(pl.exclude("_ingested_at")).equals(referee.select(pl.exclude("_ingested_at")))
    assert out.height == sum(f.count(b"\n") - 1 for f in files)
    # The tokenized column is left for tokenize_cards; no other holds a card number.
    assert out["card_number"].str.contains(r"\d{4}[ -]?\d{4}").all()
    assert not out["note"].str.contains(r"\d{4}[ -]?\d{4}[ -]?\d{4}").any()
    assert out["note"].str.contains("[card ####", literal=True).any()


def test_pos_batch_values_are_kept_as_text_and_bad_json_is_rejected():
    frame = read_jsonl_drop(b'{"event_id":"E1","event_ts":"2026-09-01 10:00:00","store_id":"S1","product_id":"P1","quantity":-2}\n', POS_COLUMNS)
    assert frame.row(0) == ("E1", "2026-09-01 10:00:00", "S1", "P1", "-2", 1)
    with pytest.raises(MalformedDrop, match="invalid JSON on line 2"):
        read_jsonl_drop(b'{"event_id":"E1"}\n{"event_id":\n', POS_COLUMNS)


def _jsonl_referee(text: str) -> list[tuple] | None:
    """What `json.loads` line by line makes of a batch (values as `str`), or None if it refuses it."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            return None
        if not isinstance(obj, dict):
            return None
        rows.append(tuple(None if obj.get(c) is None else str(obj[c]) for c in COLS) + (len(rows) + 1,))
    return rows


def _random_batch(rng: random.Random) -> str:
    """A JSON Lines batch: mostly well-formed (a column keeps its JSON type, as a real feed's
    does), some with the values and lines a vectorised reader could read otherwise than
    `json.loads`: true, 2.50, 1e2, huge integers, objects, lists, mixed types, duplicate keys, two
    objects on a line, blank lines, CRLF, raw tabs, U+2028, escaped surrogates."""
    odd = [
        lambda: True, lambda: 2.50, lambda: 1e2, lambda: 10**20, lambda: {"n": 1}, lambda: [1, "a"], lambda: None,
        lambda: "tab\tin", lambda: "line\u2028sep", lambda: "\U0001f600", lambda: "é", lambda: "",
    ]
    def plain(i: int) -> dict:
        return {"a": f"E{i}", "b": rng.randint(-3, 10**12), "c": rng.choice(["x", None, "2026-09-01 10:00:00", "2026-09-01"])}
    lines = [json.dumps(plain(i), ensure_ascii=rng.random() < 0.5) for i in range(rng.randint(1, 6))]
    if rng.random() < 0.6:
        bad = rng.choice([
            lambda: json.dumps({**plain(0), rng.choice(COLS): rng.choice(odd)()}, ensure_ascii=rng.random() < 0.5),
            lambda: "", lambda: "   ", lambda: "[1]", lambda: '{"a": 1}{"a": 2}', lambda: '{"a": 1, "a": "2"}', lambda: '{"a": ',
            lambda: '{"a": "raw\ttab"}', lambda: '{"a": NaN}',
        ])
        lines.insert(rng.randrange(len(lines) + 1), bad())
    return rng.choice(["\n", "\r\n"]).join(lines) + rng.choice(["", "\n"])


def test_pos_batches_parse_as_json_loads_line_by_line_would_whichever_reader_runs(monkeypatch):
    # Every batch the native readers can take takes them, however small.
    monkeypatch.setattr(transforms, "NATIVE_JSONL_BYTES", 0)
    rng = random.Random(20261203)
    vectorised = 0
    for _ in range(600):
        text = _random_batch(rng)
        want = _jsonl_referee(text)
        if want is None:
            with pytest.raises(MalformedDrop):
                read_jsonl_drop(text.encode(), COLS)
            assert transforms._jsonl_vectorised(text.encode(), COLS) is None, text
            continue
        assert read_jsonl_drop(text.encode(), COLS).rows() == want, text
        vectorised += transforms._jsonl_vectorised(text.encode(), COLS) is not None
    # The native readers, not only the line-by-line fallback, are what was compared.
    assert vectorised > 150


def test_generated_pos_batches_take_the_native_readers(generated_landing):
    batches = sorted((generated_landing / "pos_events").glob("*.jsonl"))[:20]
    assert batches
    for path in batches:
        data = path.read_bytes()
        assert transforms._jsonl_vectorised(data, POS_COLUMNS) is not None, path.name
        assert read_jsonl_drop(data, POS_COLUMNS).rows() == _pos_referee(data)


def _pos_referee(data: bytes) -> list[tuple]:
    rows = []
    for line in data.decode().splitlines():
        if line.strip():
            obj = json.loads(line)
            rows.append(tuple(None if obj.get(c) is None else str(obj[c]) for c in POS_COLUMNS) + (len(rows) + 1,))
    return rows


def test_drop_names_give_business_date_and_delivery_order():
    late = Drop.from_name("sales_returns", "sales_returns_20260901_233000.csv")
    early = Drop.from_name("sales_returns", "sales_returns_20260901_230000.csv")
    next_day = Drop.from_name("sales_returns", "sales_returns_20260902_010000.csv")
    assert early.business_date == dt.date(2026, 9, 1)
    assert sorted([next_day, late, early]) == [early, late, next_day]
    for bad in ("sales_returns_2026091_230000.csv", "sales_returns_20261301_230000.csv", "customer_20260901_230000.csv", "sales_returns_20260901_230000.txt"):
        assert Drop.from_name("sales_returns", bad) is None
    assert Drop.from_name("pos_events", "pos_events_20260901_060000_0002.jsonl").stamp == "060000_000000002"


def test_every_csv_source_has_the_spec_columns():
    assert SOURCE_COLUMNS["sales_returns"][:3] == ("order_id", "line_number", "customer_id")
    assert len(SOURCE_COLUMNS["payment_refund"]) == 13
