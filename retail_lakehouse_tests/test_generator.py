"""The landing-zone generator (SPEC §2): its files are read back here independently of the generator.

The files are parsed with Python's csv module and Polars, never with generator code, and every
defect is measured from the delivered text.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
from collections import Counter, defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import polars as pl
import pytest

from retail_lakehouse.generator import (
    CHANNEL_VARIANTS,
    DIRTY_RATES,
    MALFORMED_KINDS,
    POS_BATCH_STAMPS,
    POS_COLUMNS,
    SOURCE_COLUMNS,
    generate,
)
from retail_lakehouse.generator.__main__ import main as cli_main

START = dt.date(2026, 9, 1)
SCALE = 0.2
DAYS = 45
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "landing"
DAILY = ("customer", "product", "sales_returns", "payment_refund", "inventory", "loyalty")
NAME = re.compile(r"^(?P<source>[a-z_]+)_(?P<date>\d{8})_(?P<stamp>\d{6})\.csv$")
TS_FORMAT = "%Y-%m-%d %H:%M:%S"
AGE_GROUPS = ["18-25", "26-35", "36-45", "46-55", "56-65", "65+"]
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CENT = Decimal("0.01")


# --- reading the landing zone back -----------------------------------------------------------------


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_source(root: Path, source: str, malformed: dict[str, str]) -> pl.DataFrame:
    """Every regular drop of a source in delivery order, with `_date`, `_stamp`, `_file`, `_pos` and
    `_dup` (the row repeats the previous row of its file byte for byte)."""
    frames = []
    for path in sorted((root / source).glob("*.csv")):
        rel = f"{source}/{path.name}"
        if rel in malformed:
            continue
        m = NAME.match(path.name)
        frame = pl.read_csv(path, infer_schema=False)
        frames.append(
            frame.with_columns(
                pl.lit(dt.datetime.strptime(m["date"], "%Y%m%d").date()).alias("_date"),
                pl.lit(m["stamp"]).alias("_stamp"),
                pl.lit(rel).alias("_file"),
                pl.int_range(pl.len()).alias("_pos"),
            )
        )
    out = pl.concat(frames, how="vertical").sort("_date", "_stamp", "_pos", maintain_order=True)
    same = pl.all_horizontal(pl.col(c).eq_missing(pl.col(c).shift(1)) for c in SOURCE_COLUMNS[source])
    return out.with_columns((same & (pl.col("_file") == pl.col("_file").shift(1))).fill_null(False).alias("_dup"))


def parses(text: str | None) -> bool:
    if text is None:
        return False
    try:
        dt.datetime.strptime(text, TS_FORMAT)
    except ValueError:
        return False
    return True


def money(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Decimal(12, 2))


def parse_ts(col: str) -> pl.Expr:
    return pl.col(col).str.strptime(pl.Datetime, TS_FORMAT, strict=False)


def first_deliveries(frame: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """Non-duplicate rows whose key was not delivered before."""
    rows = frame.filter(~pl.col("_dup")).with_row_index("_seq")
    first = rows.group_by(key, maintain_order=True).agg(pl.col("_seq").min())
    return rows.filter(pl.col("_seq").is_in(first.get_column("_seq").implode()))


def within(count: int, eligible: int, rate: float) -> bool:
    """Binomial tolerance: 4 standard deviations or half the expectation, whichever is larger."""
    expected = eligible * rate
    tolerance = max(4 * math.sqrt(eligible * rate * (1 - rate)), 0.5 * expected, 3)
    return abs(count - expected) <= tolerance


def cents(text: str | None) -> Decimal:
    return Decimal(text) if text is not None else Decimal(0)


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


class Landing:
    def __init__(self, root: Path, summary):
        self.root = root
        self.summary = summary
        self._frames: dict[str, pl.DataFrame] = {}

    def __getitem__(self, source: str) -> pl.DataFrame:
        if source not in self._frames:
            self._frames[source] = read_source(self.root, source, self.summary.malformed)
        return self._frames[source]

    def pos(self) -> pl.DataFrame:
        frames = []
        for path in sorted((self.root / "pos_events").glob("*.jsonl")):
            schema = {c: pl.String for c in POS_COLUMNS[:-1]} | {"quantity": pl.Int64}
            frames.append(pl.read_ndjson(path, schema=schema))
        return pl.concat(frames)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Landing:
    root = tmp_path_factory.mktemp("landing")
    return Landing(root, generate(root, START, DAYS, seed=7, scale=SCALE))


# --- determinism and the shape of the tree ---------------------------------------------------------


def test_same_arguments_write_byte_identical_trees_and_another_seed_does_not(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    sa = generate(a, START, 20, seed=11, scale=0.05)
    sb = generate(b, START, 20, seed=11, scale=0.05)
    generate(c, START, 20, seed=12, scale=0.05)
    tree_a, tree_b, tree_c = read_tree(a), read_tree(b), read_tree(c)
    assert tree_a == tree_b
    assert sa.rows == sb.rows and sa.malformed == sb.malformed and sa.dirty == sb.dirty
    assert sorted(tree_a) == list(sa.files)
    same_named = set(tree_a) & set(tree_c)
    assert sum(tree_a[f] != tree_c[f] for f in same_named) > 0.9 * len(same_named)


def test_the_committed_sample_is_what_its_documented_command_writes(tmp_path):
    summary = generate(tmp_path, START, 3, seed=42, scale=0.01)
    assert read_tree(tmp_path) == read_tree(SAMPLE)
    assert sum(len(b) for b in read_tree(SAMPLE).values()) < 1_000_000
    readme = (SAMPLE.parent / "README.md").read_text()
    assert "--start 2026-09-01 --days 3 --seed 42 --scale 0.01" in readme
    assert summary.malformed == {}  # fewer than 4 days: no malformed drops


def test_every_regular_drop_is_utf8_rfc4180_with_the_contract_header(landing):
    for rel in landing.summary.files:
        if rel in landing.summary.malformed or rel.startswith("pos_events/"):
            continue
        source = rel.split("/")[0]
        data = (landing.root / rel).read_bytes()
        text = data.decode("utf-8")
        assert text.endswith("\n") and "\r" not in text, rel
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
        assert tuple(records[0]) == SOURCE_COLUMNS[source], rel
        assert all(len(r) == len(SOURCE_COLUMNS[source]) for r in records[1:]), rel
        assert pl.read_csv(data, infer_schema=False).height == len(records) - 1, rel


def test_daily_sources_deliver_every_day_and_stores_only_when_they_change(landing):
    days = [START + dt.timedelta(days=i) for i in range(DAYS)]
    names = {rel.split("/")[1] for rel in landing.summary.files}
    for source in DAILY:
        for day in days:
            assert f"{source}_{day:%Y%m%d}_230000.csv" in names, (source, day)
    store_days = sorted(landing["store"].get_column("_date").unique())
    assert store_days[0] == START
    assert len(store_days) <= 1 + DAYS // 10
    assert landing["store"].filter(pl.col("_date") == START).height == max(3, round(50 * SCALE))
    stamps = {NAME.match(n)["stamp"] for n in names if n.endswith(".csv")}
    assert stamps == {"230000", "233000", "235000"}


def test_pos_micro_batches_are_four_a_day_each_holding_its_six_hours(landing):
    files = sorted((landing.root / "pos_events").glob("*.jsonl"))
    assert len(files) == 4 * DAYS
    ids = set()
    for path in files:
        m = re.match(r"^pos_events_(\d{8})_(\d{6})_(\d{4})\.jsonl$", path.name)
        assert m, path.name
        seq = int(m[3])
        assert m[2] == POS_BATCH_STAMPS[seq - 1]
        stamp = dt.datetime.strptime(m[1] + m[2], "%Y%m%d%H%M%S")
        window_start = dt.datetime.strptime(m[1], "%Y%m%d") + dt.timedelta(hours=6 * (seq - 1))
        text = path.read_text()
        assert text.endswith("\n")
        for line in text.splitlines():
            event = json.loads(line)
            assert list(event) == list(POS_COLUMNS)
            ts = dt.datetime.strptime(event["event_ts"], TS_FORMAT)
            assert window_start <= ts < window_start + dt.timedelta(hours=6) and ts <= stamp, (path.name, ts)
            assert isinstance(event["quantity"], int) and event["quantity"] != 0
            assert event["event_id"] not in ids
            ids.add(event["event_id"])
    pos = landing.pos()
    assert within(pos.filter(pl.col("quantity") < 0).height, pos.height, 0.03)


def test_inventory_snapshots_agree_with_pos_events(landing):
    """close = previous close - net POS quantity, topped up when it falls below the reorder point."""
    inv = landing["inventory"].with_columns(
        pl.col("quantity_on_hand").cast(pl.Int64).abs().alias("q"),  # a negated value keeps its digits
        pl.col("reorder_point").cast(pl.Int64).alias("rp"),
        pl.col("snapshot_date").str.to_date().alias("d"),
    )
    tracked = set(inv.select("store_id", "product_id").unique().iter_rows())
    pos = landing.pos().with_columns(pl.col("event_ts").str.slice(0, 10).str.to_date().alias("d"))
    assert set(pos.select("store_id", "product_id").unique().iter_rows()) <= tracked
    daily = pos.group_by("store_id", "product_id", "d").agg(pl.col("quantity").sum())
    net = {(s, p, d): q for s, p, d, q in daily.iter_rows()}
    history = defaultdict(dict)
    for s, p, d, q, rp in inv.select("store_id", "product_id", "d", "q", "rp").iter_rows():
        history[(s, p)][d] = (q, rp)
    checked = replenished = 0
    for (s, p), by_day in history.items():
        for d, (q, rp) in by_day.items():
            prev = by_day.get(d - dt.timedelta(days=1))
            if prev is None:
                continue
            expected = prev[0] - net.get((s, p, d), 0)
            if expected >= rp:
                assert q == expected, (s, p, d)
            else:
                assert q > expected and q >= rp, (s, p, d)
                replenished += 1
            checked += 1
    assert checked > 0.9 * inv.height and replenished > 0


# --- dirty data, measured from the files -----------------------------------------------------------


def _check(source: str, kind: str, measured: int, eligible: int, summary, exact: bool = True):
    rate = DIRTY_RATES[source][kind]
    assert within(measured, eligible, rate), f"{source}.{kind}: {measured} of {eligible}, rate {rate}"
    if exact:
        counted = summary.dirty[source][kind]
        assert measured == counted, f"{source}.{kind}: {measured} in the files, {counted} in the summary"


def test_customer_defects_occur_at_their_documented_rates(landing):
    raw = landing["customer"]
    rows = raw.filter(~pl.col("_dup"))
    n = rows.height
    _check("customer", "duplicate_row", raw.height - n, n, landing.summary)
    email = rows.get_column("email").to_list()
    cleaned = [None if e is None else e.strip().lower() for e in email]
    counts = {
        "null_customer_id": rows.get_column("customer_id").null_count(),
        "null_email": sum(e is None for e in email),
        "malformed_email": sum(c is not None and not EMAIL.match(c) for c in cleaned),
        "email_case_whitespace": sum(e is not None and e != c and bool(EMAIL.match(c)) for e, c in zip(email, cleaned)),
        "invalid_age_group": rows.filter(~pl.col("age_group").is_in(AGE_GROUPS)).height,
        "invalid_gender": rows.filter(~pl.col("gender").is_in(["M", "F", "Other", "Prefer not to say"])).height,
        "messy_phone": rows.filter(~pl.col("phone").str.contains(r"^\d{3}-\d{3}-\d{4}$")).height,
        "messy_postal_code": rows.filter(~pl.col("postal_code").str.contains(r"^\d{5}$")).height,
        "messy_name": rows.filter(~pl.col("name").str.contains(r"^[A-Z][a-z]+ [A-Z][a-z]+$")).height,
        "malformed_timestamp": sum(
            not (parses(a) and parses(b)) for a, b in rows.select("created_at", "updated_at").iter_rows()
        ),
    }
    for kind, measured in counts.items():
        _check("customer", kind, measured, n, landing.summary)
    # Postal codes the cleaning rule (upper-case, keep [0-9A-Z-]) must actually change.
    assert rows.filter(pl.col("postal_code").str.contains(r"[^0-9A-Za-z-]")).height > 0
    assert rows.filter(pl.col("postal_code").str.contains("o")).height > 0

    # duplicate_email: a customer's first version shows the email of an earlier-created customer.
    owners: dict[str, set[str]] = defaultdict(set)
    for cid, c in zip(rows.get_column("customer_id").to_list(), cleaned):
        if cid is not None and c is not None and EMAIL.match(c):
            owners[c].add(cid)
    firsts = first_deliveries(rows.filter(pl.col("customer_id").is_not_null()), ["customer_id"])
    reused = sum(
        c is not None and any(other < cid for other in owners.get(c.strip().lower(), ()))
        for cid, c in firsts.select("customer_id", "email").iter_rows()
    )
    _check("customer", "duplicate_email", reused, firsts.height, landing.summary, exact=False)


def test_customer_drops_hold_new_and_changed_customers(landing):
    rows = landing["customer"].filter(~pl.col("_dup") & pl.col("customer_id").is_not_null())
    assert rows.filter(pl.col("_date") == START).height >= round(20_000 * SCALE) * 0.98
    seen: dict[str, tuple] = {}
    new = changed = differs = 0
    for cid, d, seg, city, postal, created, updated in rows.select(
        "customer_id", "_date", "customer_segment", "city", "postal_code", "created_at", "updated_at"
    ).iter_rows():
        postal_digits = re.sub(r"\D", "", postal.replace("o", "0"))
        if d > START and parses(created) and parses(updated):
            if cid in seen:
                changed += 1
                assert created == seen[cid][3] or not parses(seen[cid][3])
                assert updated.startswith(d.isoformat())
                differs += (seg, city, postal_digits) != seen[cid][:3]
            elif created.startswith(d.isoformat()):
                new += 1
                assert created == updated
            else:
                # A change of a customer whose earlier versions all lost their id.
                assert created < d.isoformat() and updated.startswith(d.isoformat())
        seen[cid] = (seg, city, postal_digits, created)
    expected_new = (DAYS - 1) * 0.002 * 20_000 * SCALE
    assert abs(new - expected_new) < 0.3 * expected_new
    assert changed > 0.5 * (DAYS - 1) * 0.003 * 20_000 * SCALE
    assert differs >= 0.95 * changed


def test_product_defects_occur_at_their_documented_rates(landing):
    raw = landing["product"]
    rows = raw.filter(~pl.col("_dup"))
    _check("product", "duplicate_row", raw.height - rows.height, rows.height, landing.summary)
    negative = rows.filter(pl.col("cost").str.starts_with("-") | pl.col("list_price").str.starts_with("-")).height
    _check("product", "negative_price", negative, rows.height, landing.summary)
    later = rows.filter(pl.col("_date") > START)
    _check("product", "null_product_id", later.get_column("product_id").null_count(), later.height, landing.summary)
    assert rows.filter(pl.col("_date") == START).height == round(2000 * SCALE)
    clean = rows.filter(~pl.col("cost").str.starts_with("-") & ~pl.col("list_price").str.starts_with("-"))
    assert clean.filter(money("cost") >= money("list_price")).height == 0
    assert clean.filter(~pl.col("list_price").str.contains(r"^\d+\.\d\d$")).height == 0


def _known_products(landing) -> dict[str, dt.date]:
    products = landing["product"].filter(pl.col("product_id").is_not_null())
    return dict(products.group_by("product_id").agg(pl.col("_date").min()).iter_rows())


def test_sales_defects_occur_at_their_documented_rates(landing):
    raw = landing["sales_returns"]
    rows = raw.filter(~pl.col("_dup"))
    _check("sales_returns", "duplicate_row", raw.height - rows.height, rows.height, landing.summary)
    new = first_deliveries(rows, ["order_id", "line_number"]).filter(pl.col("is_returned") == "0")
    n = new.height
    first_seen = _known_products(landing)
    unknown = sum(
        p is not None and (p not in first_seen or first_seen[p] > d)
        for p, d in new.select("product_id", "_date").iter_rows()
    )
    counts = {
        "null_key": new.filter(pl.col("customer_id").is_null() | pl.col("product_id").is_null()).height,
        "negative_quantity": new.filter(pl.col("quantity").str.starts_with("-")).height,
        "malformed_timestamp": new.filter(parse_ts("order_ts").is_null()).height,
        "unknown_product": unknown,
    }
    for kind, measured in counts.items():
        _check("sales_returns", kind, measured, n, landing.summary)
    no_discount = new.filter(pl.col("discount_amount").is_null() | (pl.col("discount_amount") == "0.00"))
    empty = no_discount.get_column("discount_amount").null_count()
    _check("sales_returns", "empty_discount_or_tax", empty, no_discount.height, landing.summary)
    assert rows.get_column("tax_amount").null_count() == 0
    assert rows.get_column("order_id").null_count() == 0 and rows.get_column("store_id").null_count() == 0


def test_unknown_products_mostly_arrive_one_to_five_days_later(landing):
    first_seen = _known_products(landing)
    new = first_deliveries(landing["sales_returns"].filter(~pl.col("_dup")), ["order_id", "line_number"])
    late = never = 0
    for p, d in new.filter(pl.col("product_id").is_not_null()).select("product_id", "_date").iter_rows():
        if p in first_seen and first_seen[p] <= d:
            continue
        if p in first_seen and 1 <= (first_seen[p] - d).days <= 5:
            late += 1
        else:
            never += 1
    assert late + never > 0 and late >= 0.6 * (late + never)


def test_payment_defects_occur_at_their_documented_rates(landing):
    raw = landing["payment_refund"]
    rows = raw.filter(~pl.col("_dup"))
    _check("payment_refund", "duplicate_row", raw.height - rows.height, rows.height, landing.summary)
    new = first_deliveries(rows, ["payment_id"])
    _check("payment_refund", "null_order_id", new.get_column("order_id").null_count(), new.height, landing.summary)
    malformed = new.filter(parse_ts("transaction_ts").is_null()).height
    _check("payment_refund", "malformed_timestamp", malformed, new.height, landing.summary)
    refunds = rows.filter(pl.col("is_refunded") == "1")
    exceeding = refunds.filter(money("refund_amount") > money("amount")).height
    _check("payment_refund", "refund_exceeds_amount", exceeding, refunds.height, landing.summary)


def test_inventory_and_loyalty_defects_occur_at_their_documented_rates(landing):
    inv = landing["inventory"]
    negative = inv.filter(pl.col("quantity_on_hand").str.starts_with("-")).height
    _check("inventory", "negative_quantity", negative, inv.height, landing.summary)
    loy = landing["loyalty"]
    _check("loyalty", "null_customer_id", loy.get_column("customer_id").null_count(), loy.height, landing.summary)
    negative = loy.filter(
        pl.col("points_earned").str.starts_with("-") | pl.col("points_redeemed").str.starts_with("-")
    ).height
    _check("loyalty", "negative_points", negative, loy.height, landing.summary)
    assert set(loy.get_column("event_type").unique()) == {"earn", "redeem", "bonus", "expire"}
    # Exactly one of the two points columns carries the event's points.
    assert loy.filter((pl.col("points_earned") != "0") == (pl.col("points_redeemed") != "0")).height == 0
    orders = first_deliveries(landing["sales_returns"].filter(~pl.col("_dup")), ["order_id", "line_number"])
    live_orders = orders.filter(pl.col("order_status") != "Cancelled").get_column("order_id").n_unique()
    assert 0.28 < loy.height / live_orders < 0.39


def test_every_dirty_kind_is_documented_and_counted():
    import retail_lakehouse.generator as generator

    for source, kinds in DIRTY_RATES.items():
        for kind, rate in kinds.items():
            assert 0 < rate < 0.5
            assert re.search(rf"^\s+{kind}\s", generator.__doc__, re.M), f"{source}.{kind} undocumented"


# --- malformed files -------------------------------------------------------------------------------


def _assert_malformed_as_promised(root: Path, rel: str, kind: str):
    source = rel.split("/")[0]
    columns = SOURCE_COLUMNS[source]
    data = (root / rel).read_bytes()
    regular = root / rel.replace("_235000.csv", "_230000.csv")
    assert regular.exists(), f"{rel}: the day's regular drop is missing"
    if kind == "not_utf8":
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
        text = data.decode("cp1252")
        assert "Müller" in text and b"\xfc" in data
        assert text.split("\n", 1)[0] == ",".join(columns)
        return
    text = data.decode("utf-8")
    header = text.split("\n", 1)[0]
    if kind == "wrong_header":
        names = next(csv.reader([header]))
        assert tuple(names) != columns
        renamed = len(names) == len(columns) and sum(a != b for a, b in zip(names, columns)) == 1
        assert renamed or [c for c in columns if c not in names] and set(names) < set(columns), header
    elif kind == "wrong_delimiter":
        assert header == ";".join(columns)
        assert all(len(r) == len(columns) for r in csv.reader(io.StringIO(text), delimiter=";"))
    elif kind == "truncated":
        assert not text.endswith("\n")
        records = list(csv.reader(io.StringIO(text)))
        assert tuple(records[0]) == columns and len(records) >= 2
        assert all(len(r) == len(columns) for r in records[1:-1])
        assert len(records[-1]) < len(columns)
    else:
        pytest.fail(f"unknown kind {kind}")


def test_malformed_drops_are_extra_files_broken_as_promised(landing):
    malformed = landing.summary.malformed
    assert set(malformed.values()) == set(MALFORMED_KINDS)
    assert sorted(malformed) == sorted(f for f in landing.summary.files if "_235000" in f)
    assert not any(f.startswith("store/") for f in malformed)
    for rel, kind in malformed.items():
        _assert_malformed_as_promised(landing.root, rel, kind)


def test_four_days_are_enough_for_every_malformed_kind(tmp_path):
    summary = generate(tmp_path, START, 4, seed=3, scale=0.02)
    assert sorted(summary.malformed.values()) == sorted(MALFORMED_KINDS)
    for rel, kind in summary.malformed.items():
        _assert_malformed_as_promised(tmp_path, rel, kind)


# --- sales, returns, payments ----------------------------------------------------------------------

RETURN_COLUMNS = ("is_returned", "return_date", "return_reason", "return_quantity", "return_amount")


def _clean_line(row: dict) -> bool:
    """No defect in the row: the source's true values as delivered."""
    return bool(
        row["customer_id"] and row["product_id"] and not row["quantity"].startswith("-")
        and parses(row["order_ts"]) and row["discount_amount"] is not None
    )


def _line_total(q: int, price: str, discount: str | None, tax: str) -> Decimal:
    return q * Decimal(price) - cents(discount) + Decimal(tax)


def test_returns_are_full_updated_rows_0_to_30_days_after_the_order(landing):
    rows = landing["sales_returns"].filter(~pl.col("_dup")).with_row_index("_seq")
    returns = rows.filter(pl.col("is_returned") == "1")
    assert returns.height > 0
    latest_before: dict[tuple, tuple] = {}
    position: dict[tuple, tuple] = {}
    kept = [c for c in SOURCE_COLUMNS["sales_returns"] if c not in RETURN_COLUMNS]
    compared = 0
    for row in rows.iter_rows(named=True):
        key = (row["order_id"], row["line_number"])
        if row["is_returned"] == "0":
            latest_before[key] = tuple(row[c] for c in kept)
            position.setdefault(key, (row["_file"], row["_seq"]))
            continue
        assert key in latest_before, key  # the original line was delivered first
        order_day = dt.date.fromisoformat(row["order_ts"][:10])
        return_day = dt.date.fromisoformat(row["return_date"])
        assert return_day == row["_date"] and row["_stamp"] == "230000"
        assert 0 <= (return_day - order_day).days <= 30
        assert row["order_status"] != "Cancelled"
        if return_day == order_day:
            assert position[key][0] == row["_file"] and position[key][1] < row["_seq"]
        q, rq = int(row["quantity"]), int(row["return_quantity"])
        assert 0 < rq <= q
        total = _line_total(q, row["unit_price"], row["discount_amount"], row["tax_amount"])
        assert Decimal(row["return_amount"]) == (total * rq / q).quantize(CENT, ROUND_HALF_EVEN)
        assert row["return_reason"]
        original = dict(zip(kept, latest_before[key]))
        if _clean_line(original):
            assert original == {c: row[c] for c in kept}, key
            compared += 1
    assert compared > 0.9 * returns.height


def test_returns_happen_to_about_eight_percent_of_lines(landing):
    new = first_deliveries(landing["sales_returns"].filter(~pl.col("_dup")), ["order_id", "line_number"])
    returned = set(
        landing["sales_returns"].filter(pl.col("is_returned") == "1").select("order_id", "line_number").iter_rows()
    )
    # Lines old enough that their whole 30-day return window lies inside the generated days.
    old = new.filter((pl.col("_date") < START + dt.timedelta(days=DAYS - 31)) & (pl.col("order_status") != "Cancelled"))
    share = sum(k in returned for k in old.select("order_id", "line_number").iter_rows()) / old.height
    assert 0.065 < share < 0.095


def test_the_later_same_day_sales_drop_adds_lines_and_newer_versions(landing):
    rows = landing["sales_returns"].filter(~pl.col("_dup"))
    late = rows.filter(pl.col("_stamp") == "233000")
    assert late.height > 0
    for day in late.get_column("_date").unique().to_list():
        first = {
            (r["order_id"], r["line_number"]): r
            for r in rows.filter((pl.col("_date") == day) & (pl.col("_stamp") == "230000")).iter_rows(named=True)
        }
        added = updated = 0
        for r in late.filter(pl.col("_date") == day).iter_rows(named=True):
            key = (r["order_id"], r["line_number"])
            if key not in first:
                added += 1
                continue
            before = first[key]
            updated += 1
            if _clean_line(before):
                changed = [c for c in SOURCE_COLUMNS["sales_returns"] if before[c] != r[c]]
                assert changed == ["order_status"], (key, changed)
            assert (before["order_status"], r["order_status"]) == ("Shipped", "Delivered")
        assert added > 0, day
        assert updated > 0, day


def test_sales_volumes_mix_and_money_follow_the_scale(landing):
    new = first_deliveries(landing["sales_returns"].filter(~pl.col("_dup")), ["order_id", "line_number"])
    expected = 1_000_000 * SCALE / 365 * DAYS
    assert abs(new.height - expected) < 0.12 * expected
    per_day = new.group_by("_date").len().with_columns(pl.col("_date").dt.weekday().alias("wd"))
    weekend = per_day.filter(pl.col("wd") >= 5).get_column("len").mean()
    weekday = per_day.filter(pl.col("wd") < 5).get_column("len").mean()
    assert 1.15 < weekend / weekday < 1.45

    canonical = {v: c for c, variants in CHANNEL_VARIANTS.items() for v in variants}
    orders = new.group_by("order_id", maintain_order=True).agg(
        pl.col("sales_channel").first(), pl.col("line_number").cast(pl.Int64).max().alias("lines"),
        pl.col("customer_id").first(), pl.col("order_status").first(),
    )
    assert set(orders.get_column("sales_channel").unique()) <= set(canonical)
    shares = Counter(canonical[v] for v in orders.get_column("sales_channel"))
    for channel, share in (("Online", 0.45), ("Store", 0.40), ("Mobile", 0.15)):
        assert abs(shares[channel] / orders.height - share) < 0.03, channel
    for channel, variants in CHANNEL_VARIANTS.items():
        spelled = Counter(v for v in orders.get_column("sales_channel") if canonical[v] == channel)
        assert spelled.most_common(1)[0][0] == variants[0] and set(spelled) == set(variants)
    assert orders.get_column("lines").is_between(1, 5).all()
    timed = new.filter(parse_ts("order_ts").is_not_null())
    for channel, order_ts, delivery in timed.select("sales_channel", "order_ts", "delivery_date").iter_rows():
        wait = (dt.date.fromisoformat(delivery) - dt.date.fromisoformat(order_ts[:10])).days
        assert wait == 0 if canonical[channel] == "Store" else 1 <= wait <= 7
    assert timed.filter(pl.col("order_ts").str.slice(0, 10) != pl.col("_date").cast(pl.String)).height == 0
    assert 0.01 < (orders.get_column("order_status") == "Cancelled").mean() < 0.035
    by_customer = sorted(Counter(orders.get_column("customer_id").drop_nulls()).values(), reverse=True)
    assert sum(by_customer[: len(by_customer) // 10]) > 0.3 * sum(by_customer)

    clean = new.filter(pl.col("discount_amount").is_not_null() & ~pl.col("quantity").str.starts_with("-"))
    for q, price, disc, tax in clean.select("quantity", "unit_price", "discount_amount", "tax_amount").iter_rows():
        assert 1 <= int(q) <= 5
        gross = int(q) * Decimal(price)
        net = gross - Decimal(disc)
        assert Decimal(tax) == (net * Decimal("0.08")).quantize(CENT, ROUND_HALF_EVEN)
        assert re.fullmatch(r"\d+\.\d\d", price) and re.fullmatch(r"\d+\.\d\d", disc)
        low, high = gross * Decimal("0.10") - CENT / 2, gross * Decimal("0.20") + CENT / 2
        assert Decimal(disc) == 0 or low <= Decimal(disc) <= high
    discounted = clean.filter(pl.col("discount_amount") != "0.00").height / clean.height
    assert 0.15 < discounted < 0.25


def test_unit_price_is_the_list_price_of_the_order_date(landing):
    """Prices change at midnight: every line of a day sees the list price of the latest product drop
    (a version that lost its product_id still names the product by its sku; a negated price keeps
    its digits)."""
    products = landing["product"]
    by_sku = dict(products.filter(pl.col("product_id").is_not_null()).select("sku", "product_id").unique().iter_rows())
    versions = defaultdict(list)
    for pid, sku, d, price in products.select("product_id", "sku", "_date", "list_price").iter_rows():
        versions[pid or by_sku[sku]].append((d, Decimal(price.lstrip("-"))))
    new = first_deliveries(landing["sales_returns"].filter(~pl.col("_dup")), ["order_id", "line_number"])
    checked = matching = 0
    sold = new.filter(pl.col("product_id").is_not_null()).select("product_id", "_date", "unit_price")
    for pid, d, price in sold.iter_rows():
        known = [p for vd, p in versions.get(pid, ()) if vd <= d]
        if known:
            checked += 1
            matching += known[-1] == Decimal(price)
    assert checked > 0.98 * new.height and matching == checked


def test_payments_add_up_to_their_orders_and_refunds_to_the_returns(landing):
    sales = landing["sales_returns"].filter(~pl.col("_dup"))
    order_total: dict[str, Decimal] = defaultdict(Decimal)
    for oid, q, price, disc, tax in first_deliveries(sales, ["order_id", "line_number"]).select(
        "order_id", "quantity", "unit_price", "discount_amount", "tax_amount"
    ).iter_rows():
        order_total[oid] += _line_total(abs(int(q)), price, disc, tax)
    returned: dict[str, Decimal] = defaultdict(Decimal)
    for oid, amount in sales.filter(pl.col("is_returned") == "1").select("order_id", "return_amount").iter_rows():
        returned[oid] += Decimal(amount)

    payments = landing["payment_refund"].filter(~pl.col("_dup"))
    new = first_deliveries(payments, ["payment_id"])
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for oid, amount in new.select("order_id", "amount").iter_rows():
        paid[oid] += Decimal(amount)
    nulled = set(payments.filter(pl.col("order_id").is_null()).get_column("payment_id"))
    assert set(paid) - {None} <= set(order_total)
    matching = sum(paid[o] == t for o, t in order_total.items())
    assert matching >= len(order_total) - len(nulled)
    split = new.group_by("order_id").len().filter(pl.col("len") == 2).height
    assert 0.01 < split / len(order_total) < 0.05

    orders = first_deliveries(sales, ["order_id", "line_number"]).filter(parse_ts("order_ts").is_not_null())
    order_info = {o: (ts, st) for o, ts, st in orders.select("order_id", "order_ts", "order_status").iter_rows()}
    timed = new.filter(parse_ts("transaction_ts").is_not_null() & pl.col("order_id").is_in(list(order_info)))
    for oid, tx, status in timed.select("order_id", "transaction_ts", "payment_status").iter_rows():
        order_ts, order_status = order_info[oid]
        lag = dt.datetime.strptime(tx, TS_FORMAT) - dt.datetime.strptime(order_ts, TS_FORMAT)
        assert dt.timedelta(0) <= lag <= dt.timedelta(seconds=30) and tx[:10] == order_ts[:10]
        assert (status == "Failed") == (order_status == "Cancelled")
    assert 0.9 < (timed.get_column("payment_status") == "Completed").mean() < 0.99

    refunds = payments.filter(pl.col("is_refunded") == "1")
    exceeded = set(refunds.filter(money("refund_amount") > money("amount")).get_column("order_id"))
    latest = refunds.group_by("payment_id", maintain_order=True).last()
    refunded: dict[str, Decimal] = defaultdict(Decimal)
    for oid, amount in latest.select("order_id", "refund_amount").iter_rows():
        refunded[oid] += Decimal(amount)
    assert set(refunded) == set(returned)
    for oid, amount in returned.items():
        if oid not in exceeded:
            assert refunded[oid] == amount, oid
    for row in refunds.iter_rows(named=True):
        assert row["refund_date"] == row["_date"].isoformat()
        assert row["refund_status"] in ("Processed", "Pending") and row["refund_reason"]


def test_card_numbers_are_luhn_valid_and_sometimes_typed_with_separators(landing):
    new = first_deliveries(landing["payment_refund"].filter(~pl.col("_dup")), ["payment_id"])
    cards = new.filter(pl.col("payment_type").is_in(["Credit Card", "Debit Card"]))
    others = new.filter(~pl.col("payment_type").is_in(["Credit Card", "Debit Card"]))
    assert others.get_column("card_number").null_count() == others.height
    assert others.get_column("card_brand").null_count() == others.height
    separated = 0
    prefixes = {
        "Visa": ("4",), "Mastercard": ("51", "52", "53", "54", "55"), "Amex": ("34", "37"), "Discover": ("6011",)
    }
    for brand, number in cards.select("card_brand", "card_number").iter_rows():
        digits = re.sub(r"[ -]", "", number)
        assert digits.isdigit() and len(digits) == (15 if brand == "Amex" else 16), number
        assert luhn(digits) and digits.startswith(prefixes[brand]), number
        separated += digits != number
    assert 0.25 < separated / cards.height < 0.35
    assert set(new.get_column("payment_type").unique()) == {"Credit Card", "Debit Card", "PayPal", "Gift Card", "Cash"}


def test_only_card_numbers_look_like_card_numbers(landing):
    """A PCI scanner looking for 13-19 digit runs (single spaces or dashes allowed) finds card
    numbers in payment_refund.card_number and nowhere else: ids, phones and dates stay shorter."""
    pan = r"(?:^|[^0-9A-Za-z])(?:\d[ -]?){12,18}\d(?:$|[^0-9A-Za-z])"
    for source in SOURCE_COLUMNS:
        frame = landing[source]
        for column in SOURCE_COLUMNS[source]:
            if (source, column) != ("payment_refund", "card_number"):
                assert frame.filter(pl.col(column).str.contains(pan)).height == 0, (source, column)
    pos = landing.pos()
    for column in POS_COLUMNS[:-1]:
        assert pos.filter(pl.col(column).str.contains(pan)).height == 0, column


# --- API and CLI -----------------------------------------------------------------------------------


def test_cli_writes_the_landing_zone_and_prints_one_line(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--start", "2026-09-01", "--days", "2", "--seed", "1", "--scale", "0.01"]
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and "sales_returns" in printed
    assert (tmp_path / "sales_returns" / "sales_returns_20260902_230000.csv").exists()
    with pytest.raises(SystemExit):
        cli_main(["--out", str(tmp_path), "--start", "2026-02-30"])
    with pytest.raises(SystemExit):
        cli_main(["--out", str(tmp_path), "--days", "0"])


def test_generate_rejects_arguments_it_cannot_honour(tmp_path):
    for kwargs in ({"days": 0}, {"days": 3, "scale": 0.0}, {"days": 3, "seed": -1}):
        days = kwargs.pop("days")
        with pytest.raises(ValueError):
            generate(tmp_path, START, days, **kwargs)
    assert not any(tmp_path.iterdir())
