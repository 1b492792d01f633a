"""The gold star schema and reports pinned on a few hand-written silver rows and hand-worked numbers."""

import datetime as dt
import random
from decimal import Decimal
from hashlib import blake2b

import polars as pl
import pytest

from retail_lakehouse.contracts import SILVER_CUSTOMER, SILVER_PAYMENT, SILVER_PRODUCT, SILVER_SALES, SILVER_STORE
from retail_lakehouse.gold import star

UTC = dt.timezone.utc
LOADED = dt.datetime(2026, 9, 3, 2, 0, tzinfo=UTC)


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def documented_key(*fields: str) -> int:
    """The surrogate key exactly as stable_key documents it, computed independently of it."""
    digest = blake2b("\x1f".join(fields).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


def silver(contract: dict, rows: list[dict], drop: str = "2026-09-01") -> pl.DataFrame:
    """Silver-shaped rows in delivery order: one file per drop date, rows numbered as listed."""
    data = []
    for number, row in enumerate(rows, start=1):
        day = row.get("drop", drop)
        lineage = {"drop_date": dt.date.fromisoformat(day), "_source_file": f"drop_{day}.csv", "_row_number": number}
        data.append({k: v for k, v in row.items() if k != "drop"} | lineage)
    return pl.DataFrame(data, schema=contract)


def customers(*rows: dict) -> pl.DataFrame:
    base = {"name": "Ada", "email": "ada@example.com", "customer_segment": "Regular", "data_quality_score": 1.0}
    stamps = [{"created_at": ts(r.get("created_at", r["updated_at"])), "updated_at": ts(r["updated_at"])} for r in rows]
    return silver(SILVER_CUSTOMER, [base | r | stamp for r, stamp in zip(rows, stamps)])


def products(*rows: dict) -> pl.DataFrame:
    base = {"sku": "SKU", "name": "Kettle", "category": "Home", "cost": Decimal("5.00"), "list_price": Decimal("9.99")}
    return silver(SILVER_PRODUCT, [base | r | {"updated_at": ts(r["updated_at"])} for r in rows])


def sale(order_id, line, customer_id, product_id, at, total, qty=1, channel="Online", returned_qty=None, refund=None):
    order_ts = ts(at)
    return {
        "order_id": order_id, "line_number": line, "customer_id": customer_id, "product_id": product_id,
        "store_id": "S01", "order_ts": order_ts, "order_date": order_ts.date(), "quantity": qty,
        "unit_price": Decimal(total), "discount_amount": Decimal("0"), "tax_amount": Decimal("0"),
        "sales_total": Decimal(total), "sales_channel": channel, "order_status": "Delivered",
        "is_returned": returned_qty is not None, "return_date": order_ts.date() if returned_qty else None,
        "return_quantity": returned_qty, "return_amount": Decimal(refund) if returned_qty else None,
    }


def sales(*rows: dict) -> pl.DataFrame:
    return silver(SILVER_SALES, list(rows))


def facts_of(lines: pl.DataFrame, dim_customer: pl.DataFrame | None = None, dim_product: pl.DataFrame | None = None):
    """fact_sales over `lines`; dimensions default to empty ones (every id unknown)."""
    dim_customer = star.build_dim_customer(customers()) if dim_customer is None else dim_customer
    dim_product = star.build_dim_product(products()) if dim_product is None else dim_product
    return star.build_fact_sales(lines, dim_customer, dim_product, LOADED)


# Surrogate keys


def test_stable_key_is_blake2b_of_the_documented_canonical_text():
    frame = pl.DataFrame(
        {
            "order_id": ["O1", "O1", "O2"],
            "line_number": [1, 2, 10],
            "at": [ts("2026-09-01 10:00"), ts("2026-09-01 10:00:00.5"), None],
        },
        schema={"order_id": pl.String, "line_number": pl.Int32, "at": star.TIMESTAMP},
    )
    expected = [
        documented_key("O1", "1", "2026-09-01T10:00:00.000000Z"),
        documented_key("O1", "2", "2026-09-01T10:00:00.500000Z"),
        documented_key("O2", "10", "\x00"),
    ]
    assert star.stable_key(frame["order_id"], frame["line_number"], frame["at"]).to_list() == expected
    assert frame.select(star.stable_key("order_id", pl.col("line_number"), "at")).to_series().to_list() == expected
    assert star.stable_key(pl.Series([dt.date(2026, 9, 1)])).item() == documented_key("2026-09-01")


def test_stable_key_reads_timestamps_in_utc_whatever_their_zone_or_unit():
    instant = pl.Series([ts("2026-09-01 10:00")], dtype=pl.Datetime("us", "UTC"))
    in_paris = instant.dt.convert_time_zone("Europe/Paris").dt.cast_time_unit("ns")
    naive = instant.dt.replace_time_zone(None)
    keys = {star.stable_key(pl.Series(["C1"]), s).item() for s in (instant, in_paris, naive)}
    assert keys == {documented_key("C1", "2026-09-01T10:00:00.000000Z")}


def test_stable_key_is_never_negative_so_never_the_unknown_key():
    keys = star.stable_key(pl.Series([f"C{i}" for i in range(5000)]))
    assert keys.dtype == pl.Int64
    assert keys.min() >= 0
    assert keys.n_unique() == 5000


def test_stable_key_refuses_floats_and_decimals():
    with pytest.raises(TypeError, match="cannot be part of a key"):
        star.stable_key(pl.Series("price", [1.5]))
    with pytest.raises(TypeError, match="cannot be part of a key"):
        star.stable_key(pl.Series("price", [Decimal("1.50")], dtype=pl.Decimal(18, 2)))


def test_surrogate_keys_are_stable_across_calls_and_row_order():
    history = customers(
        {"customer_id": "C1", "updated_at": "2026-09-01 00:00"},
        {"customer_id": "C2", "updated_at": "2026-09-01 00:00", "email": "bob@example.com"},
        {"customer_id": "C1", "updated_at": "2026-09-05 00:00", "customer_segment": "VIP"},
    )
    lines = sales(
        *[sale(f"O{i}", 1 + i % 2, f"C{1 + i % 2}", "P1", f"2026-09-0{1 + i % 8} 12:00", "1.00") for i in range(12)]
    )
    dim_product = star.build_dim_product(products({"product_id": "P1", "updated_at": "2026-08-01 00:00"}))

    dim = star.build_dim_customer(history)
    dim_shuffled = star.build_dim_customer(history.sample(fraction=1.0, shuffle=True, seed=1))
    assert dim.equals(dim_shuffled)
    assert dim["customer_key"].to_list()[1:] == [
        documented_key("C1", "2026-09-01T00:00:00.000000Z"),
        documented_key("C1", "2026-09-05T00:00:00.000000Z"),
        documented_key("C2", "2026-09-01T00:00:00.000000Z"),
    ]

    facts = facts_of(lines, dim, dim_product)
    assert facts.equals(facts_of(lines.sample(fraction=1.0, shuffle=True, seed=2), dim_shuffled, dim_product))
    line_ids = facts.select("order_id", "line_number").rows()
    assert facts["sales_id"].to_list() == [documented_key(order_id, str(line)) for order_id, line in line_ids]


# Dimensions


def test_segment_change_creates_second_version_and_facts_point_at_the_right_one():
    history = customers(
        {"customer_id": "C1", "created_at": "2026-08-01 09:00", "updated_at": "2026-09-01 00:00"},
        {
            "customer_id": "C1", "created_at": "2026-08-01 09:00", "updated_at": "2026-09-10 08:00",
            "customer_segment": "VIP", "drop": "2026-09-10",
        },
    )
    dim = star.build_dim_customer(history)
    versions = dim.filter(pl.col("customer_id") == "C1")
    assert versions.select("customer_segment", "valid_from", "valid_to", "is_current").rows() == [
        ("Regular", ts("2026-08-01 09:00"), ts("2026-09-10 08:00"), False),
        ("VIP", ts("2026-09-10 08:00"), None, True),
    ]
    first, second = versions["customer_key"].to_list()

    dim_product = star.build_dim_product(products({"product_id": "P1", "updated_at": "2026-08-01 00:00"}))
    lines = sales(
        sale("O1", 1, "C1", "P1", "2026-07-15 10:00", "1.00"),  # before the customer existed: its first version
        sale("O2", 1, "C1", "P1", "2026-09-05 10:00", "1.00"),
        sale("O3", 1, "C1", "P1", "2026-09-10 07:59:59", "1.00"),
        sale("O4", 1, "C1", "P1", "2026-09-10 08:00", "1.00"),  # valid_from is inclusive
        sale("O5", 1, "C1", "P1", "2026-09-20 10:00", "1.00"),
    )
    facts = facts_of(lines, dim, dim_product)
    assert facts.select("order_id", "customer_key").rows() == [
        ("O1", first), ("O2", first), ("O3", first), ("O4", second), ("O5", second),
    ]


def test_customer_first_version_starts_at_created_at_only_when_earlier():
    dim = star.build_dim_customer(
        customers(
            {"customer_id": "C1", "created_at": "2026-08-01 00:00", "updated_at": "2026-09-01 00:00"},
            {"customer_id": "C2", "created_at": "2026-09-02 00:00", "updated_at": "2026-09-01 00:00"},
        )
    )
    assert dim.filter(pl.col("customer_key") != -1).select("customer_id", "valid_from").rows() == [
        ("C1", ts("2026-08-01 00:00")),
        ("C2", ts("2026-09-01 00:00")),
    ]


def test_identical_consecutive_versions_collapse():
    history = products(
        {"product_id": "P1", "updated_at": "2026-09-01 00:00"},
        {"product_id": "P1", "updated_at": "2026-09-03 00:00", "drop": "2026-09-03"},  # no tracked change
        {"product_id": "P1", "updated_at": "2026-09-05 00:00", "list_price": Decimal("12.50"), "drop": "2026-09-05"},
        {"product_id": "P1", "updated_at": "2026-09-07 00:00", "drop": "2026-09-07"},  # back to the first price
    )
    dim = star.build_dim_product(history).filter(pl.col("product_id") == "P1")
    assert dim.select("list_price", "valid_from", "valid_to").rows() == [
        (Decimal("9.99"), ts("2026-09-01 00:00"), ts("2026-09-05 00:00")),
        (Decimal("12.50"), ts("2026-09-05 00:00"), ts("2026-09-07 00:00")),
        (Decimal("9.99"), ts("2026-09-07 00:00"), None),
    ]


def test_versions_with_one_updated_at_keep_the_last_delivered():
    history = products(
        {"product_id": "P1", "updated_at": "2026-09-01 00:00", "name": "Kettel"},
        {"product_id": "P1", "updated_at": "2026-09-01 00:00", "name": "Kettle", "drop": "2026-09-02"},
    )
    dim = star.build_dim_product(history).filter(pl.col("product_id") == "P1")
    assert dim.select("name", "valid_from", "is_current").rows() == [("Kettle", ts("2026-09-01 00:00"), True)]


def test_versions_are_ordered_by_updated_at_so_a_late_delivered_old_version_is_history():
    history = products(
        {"product_id": "P1", "updated_at": "2026-09-05 00:00", "list_price": Decimal("12.50"), "drop": "2026-09-05"},
        {"product_id": "P1", "updated_at": "2026-09-01 00:00", "drop": "2026-09-06"},
    )
    dim = star.build_dim_product(history).filter(pl.col("product_id") == "P1")
    assert dim.select("list_price", "is_current").rows() == [(Decimal("9.99"), False), (Decimal("12.50"), True)]


def test_scd2_intervals_do_not_overlap_and_one_is_current():
    rng = random.Random(4)
    rows = [
        {
            "customer_id": f"C{rng.randint(1, 6)}",
            "updated_at": f"2026-09-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:00",
            "customer_segment": rng.choice(["Regular", "VIP"]),
            "city": rng.choice(["Leeds", "York", None]),
            "drop": f"2026-09-{rng.randint(1, 28):02d}",
        }
        for _ in range(80)
    ]
    dim = star.build_dim_customer(customers(*rows))
    real = dim.filter(pl.col("customer_key") != star.UNKNOWN_KEY)
    assert real["customer_key"].n_unique() == real.height
    for (customer_id,), versions in real.group_by("customer_id"):
        assert versions["valid_from"].is_sorted()
        assert versions["valid_to"].to_list()[:-1] == versions["valid_from"].to_list()[1:]
        assert versions["valid_to"].to_list()[-1] is None
        assert versions["is_current"].to_list() == [False] * (versions.height - 1) + [True]
        attributes = versions.select(star.CUSTOMER_ATTRIBUTES).rows()
        assert all(a != b for a, b in zip(attributes, attributes[1:])), customer_id


def test_each_dimension_holds_one_unknown_member():
    dim_customer = star.build_dim_customer(customers({"customer_id": "C1", "updated_at": "2026-09-01 00:00"}))
    dim_product = star.build_dim_product(products({"product_id": "P1", "updated_at": "2026-09-01 00:00"}))
    for dim, key, natural_key in (
        (dim_customer, "customer_key", "customer_id"),
        (dim_product, "product_key", "product_id"),
    ):
        unknown = dim.filter(pl.col(key) == -1)
        assert unknown.height == 1
        row = unknown.row(0, named=True)
        assert (row[natural_key], row["name"], row["valid_from"], row["valid_to"], row["is_current"]) == (
            "UNKNOWN", "Unknown", ts("1900-01-01 00:00"), None, True,
        )
        other = set(star.CUSTOMER_ATTRIBUTES if key == "customer_key" else star.PRODUCT_ATTRIBUTES) - {"name"}
        assert all(row[c] is None for c in other)


def test_dim_store_keeps_the_latest_delivered_attributes_and_an_unknown_member():
    stores = silver(
        SILVER_STORE,
        [
            {"store_id": "S02", "name": "Leeds", "square_footage": 900, "drop": "2026-09-01"},
            {"store_id": "S01", "name": "York", "square_footage": 1200, "drop": "2026-09-01"},
            {"store_id": "S01", "name": "York Central", "square_footage": 1500, "drop": "2026-09-02"},
        ],
    )
    dim = star.build_dim_store(stores)
    assert dim.schema == pl.Schema(star.DIM_STORE_SCHEMA)
    assert dim.select("store_key", "store_id", "name", "square_footage").rows() == [
        (-1, "UNKNOWN", "Unknown", None),
        (documented_key("S01"), "S01", "York Central", 1500),
        (documented_key("S02"), "S02", "Leeds", 900),
    ]


def test_dim_date_has_iso_weeks_monday_first_and_weekends():
    calendar = star.build_dim_date(dt.date(2026, 12, 31), dt.date(2027, 1, 4))
    assert calendar.schema == pl.Schema(star.DIM_DATE_SCHEMA)
    assert calendar.rows() == [
        (20261231, dt.date(2026, 12, 31), 2026, 4, 12, 53, 4, False),
        (20270101, dt.date(2027, 1, 1), 2027, 1, 1, 53, 5, False),
        (20270102, dt.date(2027, 1, 2), 2027, 1, 1, 53, 6, True),
        (20270103, dt.date(2027, 1, 3), 2027, 1, 1, 53, 7, True),
        (20270104, dt.date(2027, 1, 4), 2027, 1, 1, 1, 1, False),
    ]
    with pytest.raises(ValueError):
        star.build_dim_date(dt.date(2027, 1, 2), dt.date(2027, 1, 1))


# Facts


def test_unknown_product_maps_to_minus_one():
    dim_customer = star.build_dim_customer(customers({"customer_id": "C1", "updated_at": "2026-09-01 00:00"}))
    dim_product = star.build_dim_product(products({"product_id": "P1", "updated_at": "2026-09-01 00:00"}))
    lines = sales(
        sale("O1", 1, "C1", "P1", "2026-09-02 10:00", "1.00"),
        sale("O1", 2, "C9", "P9", "2026-09-02 10:00", "1.00"),
    )
    facts = facts_of(lines, dim_customer, dim_product)
    assert facts.select("line_number", "customer_key", "product_key").rows() == [
        (1, documented_key("C1", "2026-09-01T00:00:00.000000Z"), documented_key("P1", "2026-09-01T00:00:00.000000Z")),
        (2, -1, -1),
    ]


def test_stale_days_are_the_days_whose_stored_keys_differ_from_a_fresh_keying_line_by_line():
    """Facts keyed while a customer and two versions were still missing, against the dimensions
    once they arrived: the days found are exactly those where a line both tables hold is keyed otherwise
    by a fresh build, whichever lines only one of them holds."""
    rng = random.Random(5)
    lines = sales(*[
        sale(f"O{i}", 1 + i % 2, f"C{rng.randint(1, 6)}", f"P{rng.randint(1, 3)}", f"2026-09-{rng.randint(1, 12):02d} {rng.randint(0, 23):02d}:30", "1.00")
        for i in range(120)
    ])
    first_products = [{"product_id": f"P{p}", "updated_at": "2026-08-01 00:00"} for p in (1, 2, 3)]
    repriced = {"product_id": "P3", "updated_at": "2026-09-05 10:00", "list_price": Decimal("8.99"), "drop": "2026-09-06"}
    early = [{"customer_id": f"C{c}", "updated_at": "2026-08-01 00:00"} for c in (1, 2, 3)]
    late = [
        {"customer_id": "C4", "updated_at": "2026-09-03 00:00", "drop": "2026-09-04"},  # arrives after its first orders
        {"customer_id": "C2", "updated_at": "2026-09-07 12:00", "customer_segment": "VIP", "drop": "2026-09-09"},  # a version mid-day
    ]
    stored = facts_of(lines, star.build_dim_customer(customers(*early)), star.build_dim_product(products(*first_products)))
    # A line only the facts hold (its silver line gone), and one only silver holds (its day withheld).
    stored = pl.concat([stored, stored.head(1).with_columns(order_id=pl.lit("GONE"), customer_key=pl.lit(123, pl.Int64))])
    stored = stored.filter(pl.col("order_id") != lines["order_id"][-1])
    dim_customer = star.build_dim_customer(customers(*early, *late))
    product_dim = star.build_dim_product(products(*first_products, repriced))
    fresh = facts_of(lines, dim_customer, product_dim)

    def keys(frame: pl.DataFrame) -> dict:
        return {(r["order_id"], r["line_number"]): (r["order_date"], r["customer_key"], r["product_key"]) for r in frame.iter_rows(named=True)}

    before, after = keys(stored), keys(fresh)
    expected = sorted({before[line][0] for line in before.keys() & after.keys() if before[line] != after[line]})
    unchanged = set(lines["order_date"]) - set(expected)
    assert expected and unchanged, "the case must hold both stale and untouched days"

    assert star.stale_days(lines, stored.select("order_id", "line_number", "order_date", "customer_key", "product_key"), dim_customer, product_dim) == expected
    rekeyed = star.rekeyed_facts(lines, stored, dim_customer, product_dim)
    assert sorted(set(rekeyed["order_date"])) == expected
    assert keys(rekeyed) == {line: after.get(line, before[line]) for line, key in before.items() if key[0] in expected}


def test_fact_sales_has_the_spec_columns_in_spec_order_and_the_load_timestamp_in_utc():
    spec_columns = (
        "sales_id order_id line_number customer_id customer_key product_id product_key store_id order_date "
        "delivery_date quantity unit_price discount_amount tax_amount sales_total sales_channel order_status "
        "is_returned return_date return_reason return_quantity return_amount load_timestamp"
    ).split()
    in_new_york = dt.datetime(2026, 9, 2, 22, 0, tzinfo=dt.timezone(dt.timedelta(hours=-4)))
    facts = star.build_fact_sales(
        sales(sale("O1", 1, "C1", "P1", "2026-09-02 10:00", "1.00")),
        star.build_dim_customer(customers()), star.build_dim_product(products()), in_new_york,
    )
    assert facts.columns == spec_columns
    assert facts.schema == pl.Schema(star.FACT_SALES_SCHEMA)
    assert facts["unit_price"].dtype == pl.Decimal(18, 2)
    assert facts["load_timestamp"].to_list() == [ts("2026-09-03 02:00")]


def test_silver_frame_breaking_its_contract_is_refused_by_name():
    lines = sales(sale("O1", 1, "C1", "P1", "2026-09-02 10:00", "1.00"))
    with pytest.raises(ValueError, match="sales_total is Float64, expected Decimal"):
        facts_of(lines.with_columns(pl.col("sales_total").cast(pl.Float64)))


def test_fact_payment_keeps_the_spec_columns_sorted_by_date_and_id():
    def payment(payment_id, at, amount, refund=None):
        return {
            "payment_id": payment_id, "order_id": "O1", "amount": Decimal(amount), "transaction_ts": ts(at),
            "transaction_date": ts(at).date(), "is_refunded": refund is not None,
            "refund_amount": Decimal(refund) if refund else None, "card_token": "ab12", "card_last4": "1111",
        }

    payments = silver(
        SILVER_PAYMENT,
        [
            payment("PAY2", "2026-09-01 11:00", "5.00", refund="5.00"),
            payment("PAY3", "2026-08-31 23:00", "7.00"),
            payment("PAY1", "2026-09-01 12:00", "9.00"),
        ],
    )
    facts = star.build_fact_payment(payments, LOADED)
    assert facts.schema == pl.Schema(star.FACT_PAYMENT_SCHEMA)
    assert "transaction_ts" not in facts.columns and "card_number" not in facts.columns
    assert facts.select("payment_id", "amount", "refund_amount").rows() == [
        ("PAY3", Decimal("7.00"), None), ("PAY1", Decimal("9.00"), None), ("PAY2", Decimal("5.00"), Decimal("5.00")),
    ]
    assert facts["load_timestamp"].unique().to_list() == [LOADED]


# Aggregates and reports, over one hand-worked set of lines:
#   2026-09-01 Online: O1/1 C1 P1 q2 10.00 · O1/2 C1 P2 q1 5.01 · O2/1 C2 P2 q3 5.00 (1 returned, 2.00 refunded)
#   2026-09-01 Store:  O3/1 C1 P2 q1 20.03 · O4/1 C3 P4 q1 0.00
#   2026-09-02 Online: O5/1 C2 P1 q1 30.00 · O5/2 C2 P3 q4 0.01 (2 returned, 0.01 refunded) · O6/1 C2 P3 q1 5.00


@pytest.fixture
def worked():
    lines = sales(
        sale("O1", 1, "C1", "P1", "2026-09-01 09:00", "10.00", qty=2),
        sale("O1", 2, "C1", "P2", "2026-09-01 09:00", "5.01"),
        sale("O2", 1, "C2", "P2", "2026-09-01 10:00", "5.00", qty=3, returned_qty=1, refund="2.00"),
        sale("O3", 1, "C1", "P2", "2026-09-01 11:00", "20.03", channel="Store"),
        sale("O4", 1, "C3", "P4", "2026-09-01 12:00", "0.00", channel="Store"),
        sale("O5", 1, "C2", "P1", "2026-09-02 09:00", "30.00"),
        sale("O5", 2, "C2", "P3", "2026-09-02 09:00", "0.01", qty=4, returned_qty=2, refund="0.01"),
        sale("O6", 1, "C2", "P3", "2026-09-02 10:00", "5.00"),
    )
    dim_customer = star.build_dim_customer(
        customers(
            {"customer_id": "C1", "name": "Ada", "updated_at": "2026-08-01 00:00"},
            {"customer_id": "C1", "name": "Ada King", "customer_segment": "VIP", "updated_at": "2026-09-02 00:00"},
            {"customer_id": "C2", "name": "Bob", "email": "bob@example.com", "updated_at": "2026-08-01 00:00"},
        )
    )
    dim_product = star.build_dim_product(
        products(
            {"product_id": "P1", "name": "Kettle", "updated_at": "2026-08-01 00:00"},
            {"product_id": "P2", "name": "Mug", "category": "Kitchen", "updated_at": "2026-08-01 00:00"},
            {"product_id": "P2", "name": "Mug 300ml", "category": "Kitchen", "updated_at": "2026-09-02 00:00"},
            {"product_id": "P3", "name": "Spoon", "category": "Kitchen", "updated_at": "2026-08-01 00:00"},
            {"product_id": "P4", "name": "Sample", "category": "Promo", "updated_at": "2026-08-01 00:00"},
        )
    )
    facts = star.build_fact_sales(lines, dim_customer, dim_product, LOADED)
    return facts, dim_customer, dim_product


def test_agg_daily_sales_matches_hand_worked_totals(worked):
    facts, _, _ = worked
    daily = star.build_agg_daily_sales(facts)
    assert daily.schema == pl.Schema(star.AGG_DAILY_SALES_SCHEMA)
    assert daily.rows() == [
        # 20.01 / 2 = 10.005: half-even keeps 10.00 (half-up, or rounding the float 20.01 / 2, gives 10.01)
        (dt.date(2026, 9, 1), "Online", Decimal("20.01"), 6, 2, 3, 2, 1, Decimal("10.00")),
        # 20.03 / 2 = 10.015: the tie goes up to the even 10.02 (truncating would give 10.01)
        (dt.date(2026, 9, 1), "Store", Decimal("20.03"), 2, 2, 2, 2, 0, Decimal("10.02")),
        # 35.01 / 2 = 17.505 -> 17.50
        (dt.date(2026, 9, 2), "Online", Decimal("35.01"), 6, 2, 3, 1, 1, Decimal("17.50")),
    ]


def test_sales_performance_matches_hand_worked_numbers_newest_day_and_biggest_revenue_first(worked):
    facts, _, _ = worked
    report = star.build_sales_performance(facts)
    assert report.schema == pl.Schema(star.SALES_PERFORMANCE_SCHEMA)
    assert report.rows() == [
        (dt.date(2026, 9, 2), "Online", 2, 3, Decimal("35.01"), Decimal("11.67"), 1, Decimal("33.33")),
        (dt.date(2026, 9, 1), "Store", 2, 2, Decimal("20.03"), Decimal("10.02"), 0, Decimal("0.00")),
        (dt.date(2026, 9, 1), "Online", 2, 3, Decimal("20.01"), Decimal("6.67"), 1, Decimal("33.33")),
    ]


def test_customer_lifetime_value_uses_current_names_and_counts_days_from_the_newest_order(worked):
    facts, dim_customer, _ = worked
    report = star.build_customer_lifetime_value(facts, dim_customer)
    assert report.schema == pl.Schema(star.CUSTOMER_LIFETIME_VALUE_SCHEMA)
    sep1, sep2 = dt.date(2026, 9, 1), dt.date(2026, 9, 2)
    assert report.rows() == [
        ("C2", "Bob", "Regular", 3, Decimal("40.01"), sep1, sep2, 0, Decimal("13.34")),
        ("C1", "Ada King", "VIP", 2, Decimal("35.04"), sep1, sep1, 1, Decimal("17.52")),
        # C3 is not in the dimension yet: its sales still count, its name is unknown
        ("C3", None, None, 1, Decimal("0.00"), sep1, sep1, 1, Decimal("0.00")),
    ]


def test_product_return_analysis_matches_hand_worked_numbers(worked):
    facts, _, dim_product = worked
    report = star.build_product_return_analysis(facts, dim_product)
    assert report.schema == pl.Schema(star.PRODUCT_RETURN_ANALYSIS_SCHEMA)
    assert report.rows() == [
        # 2 of 5 units returned; 0.01 of 5.01 refunded = 0.1996 %
        ("P3", "Spoon", "Kitchen", 2, 5, 2, Decimal("40.00"), Decimal("5.01"), Decimal("0.01"), Decimal("0.20")),
        # 1 of 5 units; 2.00 of 30.04 = 6.6578 %
        ("P2", "Mug 300ml", "Kitchen", 3, 5, 1, Decimal("20.00"), Decimal("30.04"), Decimal("2.00"), Decimal("6.66")),
        ("P1", "Kettle", "Home", 2, 3, 0, Decimal("0.00"), Decimal("40.00"), Decimal("0.00"), Decimal("0.00")),
        # no revenue: the refund rate has no denominator
        ("P4", "Sample", "Promo", 1, 1, 0, Decimal("0.00"), Decimal("0.00"), Decimal("0.00"), None),
    ]


def test_return_fields_count_only_on_lines_flagged_returned():
    stale = sale("O1", 1, "C1", "P1", "2026-09-01 09:00", "8.00", qty=2)
    stale |= {"return_quantity": 1, "return_amount": Decimal("8.00")}
    returned = sale("O1", 2, "C1", "P1", "2026-09-01 09:00", "4.00", qty=2, returned_qty=1, refund="2.00")
    facts = facts_of(sales(stale, returned))
    report = star.build_product_return_analysis(facts, star.build_dim_product(products()))
    assert report.select("units_returned", "return_rate_pct", "total_refunds", "refund_rate_pct").rows() == [
        (1, Decimal("25.00"), Decimal("2.00"), Decimal("16.67")),
    ]


def test_daily_aggregate_agrees_with_duckdb_on_random_lines():
    import duckdb
    rng = random.Random(11)
    lines = sales(
        *[
            sale(
                f"O{rng.randint(1, 60)}", i, f"C{rng.randint(1, 15)}", "P1",
                f"2026-09-0{rng.randint(1, 4)} {rng.randint(0, 23):02d}:00",
                f"{rng.randint(0, 9999) / 100:.2f}",
                qty=rng.randint(1, 5),
                channel=rng.choice(["Online", "Store", "Mobile"]),
                returned_qty=1 if rng.random() < 0.2 else None, refund="0.50",
            )
            for i in range(300)
        ]
    )
    facts = facts_of(lines)
    con = duckdb.connect()
    con.register("fact_sales", facts.drop("load_timestamp").to_arrow())
    expected = con.execute(
        """
        select order_date, sales_channel, sum(sales_total), sum(quantity), count(distinct order_id), count(*),
               count(distinct customer_id), sum(case when is_returned then 1 else 0 end)
        from fact_sales group by all order by 1, 2
        """
    ).fetchall()
    daily = star.build_agg_daily_sales(facts)
    assert [row[:8] for row in daily.rows()] == [tuple(row) for row in expected]
    for row in daily.iter_rows(named=True):
        exact = row["total_revenue"] / row["total_orders"]
        assert abs(row["avg_order_value"] - exact) <= Decimal("0.005")


def test_empty_inputs_give_empty_tables_with_their_schemas():
    dim_customer = star.build_dim_customer(customers())
    dim_product = star.build_dim_product(products())
    assert dim_customer["customer_key"].to_list() == [-1] and dim_product["product_key"].to_list() == [-1]
    facts = star.build_fact_sales(sales(), dim_customer, dim_product, LOADED)
    assert facts.height == 0 and facts.schema == pl.Schema(star.FACT_SALES_SCHEMA)
    for table, schema in (
        (star.build_agg_daily_sales(facts), star.AGG_DAILY_SALES_SCHEMA),
        (star.build_sales_performance(facts), star.SALES_PERFORMANCE_SCHEMA),
        (star.build_customer_lifetime_value(facts, dim_customer), star.CUSTOMER_LIFETIME_VALUE_SCHEMA),
        (star.build_product_return_analysis(facts, dim_product), star.PRODUCT_RETURN_ANALYSIS_SCHEMA),
    ):
        assert table.height == 0 and table.schema == pl.Schema(schema)


def test_report_ratios_round_half_even_to_the_cent_as_exact_fractions_do():
    # The referee divides exact fractions in Python; the ratios are integer arithmetic in Polars.
    # Exact ties (x.xx5) on both sides of zero, negative and zero denominators, money over integers
    # and money over money.
    from fractions import Fraction

    def referee(n, d, scale):
        if n is None or d is None or d == 0:
            return None
        return Decimal(round(Fraction(n) * scale * 100 / Fraction(d))).scaleb(-2)

    rng = random.Random(11)
    counts = [rng.choice([0, 2, 4, 8, -4, rng.randint(-999, 999)]) for _ in range(5000)]
    money = [None if i % 97 == 0 else Decimal(rng.randint(-10**9, 10**9)).scaleb(-2) for i in range(5000)]
    for i in range(0, 5000, 5):
        if counts[i] and counts[i] % 2 == 0:
            money[i] = Decimal(rng.randint(-999, 999) * counts[i] + counts[i] // 2).scaleb(-2)  # a half cent
    other = [Decimal(rng.choice([0, 200, -400, rng.randint(-10**8, 10**8)])).scaleb(-2) for _ in range(5000)]
    frame = pl.DataFrame({
        "money": pl.Series(money, dtype=pl.Decimal(18, 2)),
        "count": pl.Series(counts, dtype=pl.Int64),
        "other": pl.Series(other, dtype=pl.Decimal(18, 2)),
    })
    ties = 0
    for numerator, denominator, scale in (("money", "count", 1), ("money", "other", 100), ("count", "count", 100)):
        got = star._ratio(frame, numerator, denominator, scale=scale).to_list()
        expected = [referee(n, d, scale) for n, d in zip(frame[numerator].to_list(), frame[denominator].to_list())]
        assert got == expected, (numerator, denominator)
        ties += sum(1 for n, d in zip(frame[numerator].to_list(), frame[denominator].to_list())
                    if n is not None and d and (Fraction(n) * scale * 100 / Fraction(d)).denominator == 2)
    assert ties > 500
