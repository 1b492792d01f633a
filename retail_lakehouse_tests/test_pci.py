"""PCI (seed 004): no full card number anywhere in the lakehouse, whatever column it was typed into:
not in a table, a rejection reason, a log line, an event or metadata. Money is a plain decimal, so a
card number in an amount column is quarantined, never read as an amount."""

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from retail_lakehouse.bronze.transforms import (
    MalformedDrop,
    mask_card_numbers,
    mask_cards_in_text,
    read_csv_drop,
    read_jsonl_drop,
    tokenize_cards,
)
from retail_lakehouse.landing import POS_COLUMNS, SOURCE_COLUMNS
from retail_lakehouse.silver import rules
from retail_lakehouse_tests.conftest import START

# Luhn-valid test numbers, as people type them.
CARDS = ("4111111111111111", "5500-0000-0000-0004", "4012 8888 8888 1881")
DIGITS = tuple(c.replace("-", "").replace(" ", "") for c in CARDS)


def luhn_runs(text: str) -> list[str]:
    """Every 13-19 digit run of `text` that passes the Luhn check, written independently of the
    product's scanner: digit groups joined by single spaces or dashes, any run of whole groups,
    not glued to an identifier ("O2026090100001", "LOY-20260901-00001" are ids, not cards) and not
    the fraction of a decimal number (Dagster's event log stores durations like 99.32705100004569)."""
    found = []
    for m in re.finditer(r"[0-9]+(?:[ -][0-9]+)*", text):
        if re.match(r"[0-9]\.", text[max(0, m.start() - 2) : m.start()]):
            continue
        groups = re.split(r"[ -]", m.group())
        joiners = re.findall(r"[ -]", m.group())
        lo, hi = 0, len(groups) - 1
        left, left2 = text[m.start() - 1 : m.start()] if m.start() else "", text[m.start() - 2 : m.start() - 1] if m.start() > 1 else ""
        right, right2 = text[m.end() : m.end() + 1], text[m.end() + 1 : m.end() + 2]
        word = re.compile(r"[A-Za-z0-9]")
        if left and (word.match(left) or (left in "-_" and left2 and word.match(left2))):
            while lo < hi and joiners[lo] == "-":
                lo += 1
            lo += 1
        if right and (word.match(right) or (right in "-_" and right2 and word.match(right2))):
            while hi > lo and joiners[hi - 1] == "-":
                hi -= 1
            hi -= 1
        for i in range(lo, hi + 1):
            for j in range(i, hi + 1):
                digits = "".join(groups[i : j + 1])
                if 13 <= len(digits) <= 19 and _luhn(digits):
                    found.append(digits)
    return found


def _luhn(digits: str) -> bool:
    odd = sum(int(d) for d in digits[-1::-2])
    even = sum(sum(divmod(2 * int(d), 10)) for d in digits[-2::-2])
    return (odd + even) % 10 == 0


def _leaks(text: str) -> list[str]:
    return luhn_runs(text) + [c for c in (*CARDS, *DIGITS) if c in text]


def test_the_test_scanner_finds_cards_and_leaves_identifiers_alone():
    assert _luhn("4111111111111111") and not _luhn("4111111111111112")
    assert luhn_runs("pay 4111 1111 1111 1111 exp 0127") == ["4111111111111111"]
    assert luhn_runs("4111 1111 1111 1111 0127")  # the expiry glued on with a space
    assert not luhn_runs("O2026090100001 PAY20260901000001 LOY-20260901-00001 2026-09-01 10:00:00 99.32705100004569")


@pytest.mark.parametrize(
    ("typed", "masked"),
    [
        ("4111111111111111", "[card ####1111]"),
        ("card 5500-0000-0000-0004 please", "card [card ####0004] please"),
        ("charged twice on 4012 8888 8888 1881 0127", "charged twice on [card ####1881] 0127"),
        ("(4111111111111111)/5500000000000004", "([card ####1111])/[card ####0004]"),
        ("LOY-20260901-0001 4111111111111111", "LOY-20260901-0001 [card ####1111]"),
        # Not card numbers: identifiers, a failed Luhn check, phone numbers, timestamps.
        ("O2026090100001", "O2026090100001"),
        ("PAY20260901000001", "PAY20260901000001"),
        ("4111111111111112", "4111111111111112"),
        ("205-208-7939 / 254-219-1138", "205-208-7939 / 254-219-1138"),
        ("2026-09-01 10:00:00", "2026-09-01 10:00:00"),
    ],
)
def test_a_card_number_in_free_text_keeps_only_its_last_four_digits(typed, masked):
    assert mask_cards_in_text(typed) == masked


def test_every_text_column_of_every_source_is_masked_and_card_number_is_tokenized():
    for source, columns in SOURCE_COLUMNS.items():
        rows = [",".join(CARDS[i % 3] for i, _ in enumerate(columns)), ",".join("ok" for _ in columns)]
        frame = read_csv_drop((",".join(columns) + "\n" + "\n".join(rows) + "\n").encode(), columns)
        if source == "payment_refund":
            assert frame["card_number"][0] == CARDS[4 % 3]  # left for the tokenizer
            frame = tokenize_cards(frame, b"k")
            digits = DIGITS[4 % 3]
            assert frame.row(0, named=True)["card_token"] == hmac.new(b"k", digits.encode(), hashlib.sha256).hexdigest()
            assert frame.row(0, named=True)["card_last4"] == digits[-4:]
        text = json.dumps(frame.drop("_row_number").rows())
        assert not _leaks(text), (source, _leaks(text))
        untouched = frame.select(c for c in columns if c != "card_number").row(1)
        assert untouched == tuple("ok" for _ in untouched)
    pos = read_jsonl_drop(json.dumps({c: CARDS[0] for c in POS_COLUMNS}).encode() + b"\n", POS_COLUMNS)
    assert not _leaks(json.dumps(pos.rows()))


def test_a_payment_drop_without_its_header_is_rejected_without_quoting_its_first_row():
    columns = SOURCE_COLUMNS["payment_refund"]
    row = "PAY1,O1,Credit Card,Visa,4111111111111111,9.99,Completed,2026-09-01 10:00:00,0,,,,\n"
    for data in (row.encode(), (",".join(columns[:4]) + ",4111111111111111," + ",".join(columns[5:]) + "\n" + row).encode(),
                 (",".join(columns).replace("card_number", "card_number4111111111111111") + "\n" + row).encode()):
        with pytest.raises(MalformedDrop) as e:
            read_csv_drop(data, columns)
        assert not _leaks(e.value.reason) and "4111" not in e.value.reason, e.value.reason


def test_masking_a_million_rows_only_touches_the_values_that_hold_a_card():
    n = 1_000_000
    frame = pl.DataFrame({
        "order_id": [f"O20260901{i:05d}" for i in range(n)],
        "note": ["fine"] * (n - 2) + ["card 4111 1111 1111 1111", "ref 5500-0000-0000-0004"],
    })
    out = mask_card_numbers(frame)
    assert out["order_id"].equals(frame["order_id"])
    assert out["note"][-2:].to_list() == ["card [card ####1111]", "ref [card ####0004]"]
    assert (out["note"] == frame["note"]).sum() == n - 2


def _money(values: list[str | None]) -> list:
    return pl.DataFrame({"amount": values}, schema={"amount": pl.String}).select(rules._money("amount"))["amount"].to_list()


def test_money_is_a_plain_decimal_and_a_card_number_is_never_an_amount():
    assert _money(["12", "12.5", "12.345", "-3.10", "+4", " 7.00 "]) == [
        Decimal("12.00"), Decimal("12.50"), Decimal("12.34"), Decimal("-3.10"), Decimal("4.00"), Decimal("7.00"),
    ]
    assert _money(["1e2", "12,34", "1 000", "4111111111111111", "1234567890123", "NaN", "", None]) == [None] * 8
    assert _money(["999999999999.99"]) == [Decimal("999999999999.99")]


def test_a_card_number_in_an_amount_column_is_quarantined_as_invalid():
    bronze = pl.DataFrame(
        {c: [None] for c in SOURCE_COLUMNS["payment_refund"] if c != "card_number"} | {"card_token": [None], "card_last4": [None]},
        schema={c: pl.String for c in (*SOURCE_COLUMNS["payment_refund"], "card_token", "card_last4") if c != "card_number"},
    ).with_columns(
        payment_id=pl.lit("P1"), order_id=pl.lit("O1"), amount=pl.lit("4111111111111111"),
        transaction_ts=pl.lit("2026-09-01 10:00:00"), is_refunded=pl.lit("0"),
        _source_file=pl.lit("payment_refund/payment_refund_20260901_230000.csv"), _row_number=pl.lit(1, pl.Int64),
        _ingested_at=pl.lit(dt.datetime(2026, 9, 2, tzinfo=dt.timezone.utc)), drop_date=pl.lit(dt.date(2026, 9, 1)),
    )
    out = rules.clean_payments(bronze)
    assert out.clean.is_empty()
    assert "invalid_amount" in out.quarantine["reject_reasons"][0].to_list()


def _seed_cards(landing: Path, days: list[dt.date]) -> None:
    """Card numbers in every text column of every source, and in free text of valid rows."""
    def stamp(d: dt.date) -> str:
        return f"{d:%Y%m%d}"

    for source, columns in SOURCE_COLUMNS.items():
        for path in sorted((landing / source).glob("*_230000.csv")):
            if not any(stamp(d) in path.name for d in days):
                continue
            frame = pl.read_csv(path, infer_schema=False)
            if frame.is_empty():
                continue
            everywhere = {c: f"x {CARDS[i % 3]}" if i % 2 else CARDS[i % 3] for i, c in enumerate(columns)}
            frame = pl.concat([frame, pl.DataFrame([everywhere], schema=frame.schema)])
            free_text = {"payment_refund": "refund_reason", "sales_returns": "return_reason", "customer": "name", "product": "name"}
            if source in free_text:
                col = free_text[source]
                frame = frame.with_columns(
                    pl.when(pl.int_range(pl.len()) < 5).then(pl.lit(f"typed {CARDS[2]} here")).otherwise(pl.col(col)).alias(col)
                )
            frame.write_csv(path)
    for path in sorted((landing / "pos_events").glob("*_0001.jsonl")):
        if any(stamp(d) in path.name for d in days):
            with path.open("a") as f:
                f.write(json.dumps({c: CARDS[i % 3] for i, c in enumerate(POS_COLUMNS)}) + "\n")
    first = days[0]
    payments = (landing / "payment_refund" / f"payment_refund_{stamp(first)}_230000.csv").read_bytes()
    # Delivered without its header: every line of it is data, raw card numbers included.
    (landing / "payment_refund" / f"payment_refund_{stamp(first)}_235900.csv").write_bytes(payments.split(b"\n", 1)[1])
    header = payments.split(b"\n", 1)[0].replace(b"card_number", b"4111111111111111")
    (landing / "payment_refund" / f"payment_refund_{stamp(first)}_235901.csv").write_bytes(header + b"\n")
    (landing / "payment_refund" / "4111111111111111.csv").write_bytes(b"a stray file named after a card\n")


def _every_string(frame: pl.DataFrame) -> list[str]:
    out = []
    for name, dtype in frame.schema.items():
        col = frame.get_column(name)
        if dtype == pl.List(pl.String):
            col = col.explode()
        elif dtype != pl.String:
            continue
        out.extend(col.drop_nulls().unique().to_list())
    return out


def test_no_card_number_anywhere_after_a_cli_run_of_every_layer(tmp_path):
    from retail_lakehouse.generator import generate

    days = [START, START + dt.timedelta(days=1)]
    landing = tmp_path / "landing"
    generate(landing, START, len(days), seed=13, scale=0.02)
    _seed_cards(landing, days)
    home, lake = tmp_path / "home", tmp_path / "lake"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "RETAIL_LAKEHOUSE_LANDING_ROOT": str(landing),
        "RETAIL_LAKEHOUSE_LAKE_ROOT": str(lake),
        "RETAIL_LAKEHOUSE_START_DATE": START.isoformat(),
        "RETAIL_LAKEHOUSE_TOKEN_KEY": "test-key-not-secret",
    }
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    cmd = [dagster, "asset", "materialize", "-m", "retail_lakehouse.definitions",
           "--select", "group:bronze or group:silver or group:gold", "--partition-range", f"{days[0]}...{days[-1]}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    output = proc.stdout + proc.stderr
    assert "RUN_START" in output, output[-3000:]

    # The seeded rows went through: masked in bronze, and a masked free text reached gold.
    rejected = pl.read_delta(str(lake / "bronze" / "rejected_files"))
    assert {"payment_refund/payment_refund_20260901_235900.csv", "payment_refund/payment_refund_20260901_235901.csv",
            "payment_refund/[card ####1111].csv"} <= set(rejected["_source_file"])
    assert pl.read_delta(str(lake / "bronze" / "payment_refund"))["refund_reason"].str.contains("[card ####1881]", literal=True).any()
    fact_payment = pl.read_delta(str(lake / "gold" / "fact_payment"))
    assert fact_payment["refund_reason"].str.contains("[card ####1881]", literal=True).any(), "the seeded free text did not reach gold"

    tables = [p for p in lake.rglob("_delta_log")]
    assert len(tables) > 20
    for log in tables:
        frame = pl.read_delta(str(log.parent))
        for value in _every_string(frame):
            assert not _leaks(value), f"card number in {log.parent.relative_to(lake)}: {_leaks(value)}"
    scanned = 0
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("latin-1")
        assert not _leaks(text), f"card number in {path.relative_to(home)}: {_leaks(text)[:3]}"
        scanned += path.suffix == ".db"
    assert scanned >= 2, "expected the SQLite run and event storage under DAGSTER_HOME"
    assert not _leaks(output), _leaks(output)[:3]
