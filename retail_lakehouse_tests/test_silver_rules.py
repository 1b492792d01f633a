"""Silver rules pinned on a few hand-written bronze rows."""

import datetime as dt
from decimal import Decimal

import polars as pl

from retail_lakehouse.silver import rules
from retail_lakehouse.sources import SOURCE_COLUMNS

D = dt.date(2026, 9, 1)


def bronze(source: str, rows: list[dict], drop_date: dt.date = D, file: str | None = None) -> pl.DataFrame:
    """Bronze-shaped rows: every column text, lineage in delivery order."""
    columns = [c for c in SOURCE_COLUMNS[source] if c != "card_number"]
    if source == "payment_refund":
        columns[columns.index("amount"):columns.index("amount")] = ["card_token", "card_last4"]
    name = file or f"{source}/{source}_{drop_date:%Y%m%d}_230000.csv"
    data = {c: [r.get(c) for r in rows] for c in columns}
    return pl.DataFrame(data, schema={c: pl.String for c in columns}).with_columns(
        pl.lit(name).alias("_source_file"),
        pl.int_range(1, len(rows) + 1, dtype=pl.Int64).alias("_row_number"),
        pl.lit(dt.datetime(2026, 9, 2, tzinfo=dt.timezone.utc)).alias("_ingested_at"),
        pl.lit(drop_date).alias("drop_date"),
    )


def sale(**kw) -> dict:
    row = {
        "order_id": "O1", "line_number": "1", "customer_id": "C1", "product_id": "P1", "store_id": "S1",
        "order_ts": "2026-09-01 10:00:00", "quantity": "2", "unit_price": "10.00", "discount_amount": "1.00",
        "tax_amount": "1.52", "sales_channel": "Online", "order_status": "Completed", "is_returned": "0",
    }
    return {**row, **kw}


def test_latest_valid_version_wins_and_earlier_is_superseded():
    first = bronze("sales_returns", [sale()])
    later = bronze("sales_returns", [sale(is_returned="1", return_date="2026-09-03", return_quantity="1", return_amount="10.26")],
                   drop_date=D + dt.timedelta(days=2))
    out = rules.clean_sales(pl.concat([later, first]))
    assert out.clean.height == 1 and out.clean["is_returned"][0] is True
    assert out.clean["drop_date"][0] == D + dt.timedelta(days=2)
    assert out.superseded.select("order_id", "drop_date").rows() == [("O1", D)]


def test_of_two_versions_in_one_file_the_later_row_wins_whatever_order_the_frame_is_in():
    drop = bronze("sales_returns", [sale(unit_price="10.00"), sale(unit_price="12.00")])
    for frame in (drop, drop.reverse()):
        out = rules.clean_sales(frame)
        assert out.clean["unit_price"].to_list() == [Decimal("12.00")] and out.clean["_row_number"].to_list() == [2]
        assert out.superseded["_row_number"].to_list() == [1]
    customers = bronze("customer", [
        {"customer_id": "C1", "email": "a@x.com", "customer_segment": "Regular", "created_at": "2026-09-01 08:00:00", "updated_at": "2026-09-01 08:00:00"},
        {"customer_id": "C1", "email": "a@x.com", "customer_segment": "VIP", "created_at": "2026-09-01 08:00:00", "updated_at": "2026-09-01 08:00:00"},
    ])
    assert rules.clean_customers(customers.reverse()).clean["customer_segment"].to_list() == ["VIP"]


def test_rejected_later_version_never_replaces_a_valid_one():
    first = bronze("sales_returns", [sale()])
    bad = bronze("sales_returns", [sale(quantity="-2")], drop_date=D + dt.timedelta(days=1))
    out = rules.clean_sales(pl.concat([first, bad]))
    assert out.clean["quantity"].to_list() == [2]
    assert out.quarantine["reject_reasons"].to_list() == [["non_positive_quantity"]]
    assert out.quarantine["quantity"].to_list() == ["-2"]  # original text kept


def test_sales_total_is_exact_decimal_rounded_half_even():
    # 3 × 0.10 + 0.20 is 0.50 exactly (a float would give 0.5000000000000001); a delivered value
    # with more than two decimals rounds half-even: 0.125 → 0.12, 0.135 → 0.14.
    out = rules.clean_sales(bronze("sales_returns", [
        sale(quantity="3", unit_price="0.10", discount_amount="0", tax_amount="0.20"),
        sale(line_number="2", quantity="1", unit_price="19.99", discount_amount="0.01", tax_amount="1.60"),
        sale(line_number="3", quantity="1", unit_price="0.125", discount_amount="0", tax_amount="0.135"),
    ]))
    assert out.clean.schema["sales_total"] == pl.Decimal(18, 2)
    assert out.clean.sort("line_number")["sales_total"].to_list() == [Decimal("0.50"), Decimal("21.58"), Decimal("0.26")]


def test_empty_discount_or_tax_means_zero_but_empty_quantity_or_price_is_rejected():
    out = rules.clean_sales(bronze("sales_returns", [
        sale(discount_amount=None, tax_amount=None),
        sale(line_number="2", quantity=None),
        sale(line_number="3", unit_price=None),
    ]))
    assert out.clean["sales_total"].to_list() == [Decimal("20.00")]
    assert sorted(r[0] for r in out.quarantine["reject_reasons"].to_list()) == ["required_quantity", "required_unit_price"]


def test_channels_are_normalized_and_unknown_ones_rejected():
    variants = ["Online", "online", " Web ", "Store", "In-Store", "POS", "Mobile", "App", "Mobile App", "fax"]
    out = rules.clean_sales(bronze("sales_returns", [sale(line_number=str(i), sales_channel=v) for i, v in enumerate(variants, 1)]))
    assert out.clean.sort("line_number")["sales_channel"].to_list() == ["Online"] * 3 + ["Store"] * 3 + ["Mobile"] * 3
    assert out.quarantine["reject_reasons"].to_list() == [["invalid_sales_channel"]]


def test_return_rules_and_the_late_window_quarantine_with_reasons():
    out = rules.clean_sales(bronze("sales_returns", [
        sale(line_number="1", is_returned="1", return_date="2026-08-30", return_quantity="1", return_amount="1.00"),
        sale(line_number="2", is_returned="1", return_date="2026-09-01", return_quantity="3", return_amount="1.00"),
        sale(line_number="3", is_returned="1", return_date="2026-09-01", return_quantity="1", return_amount="99.00"),
        sale(line_number="4", order_ts="2026-07-15 10:00:00"),
        sale(line_number="5", order_ts="2026-09-02 10:00:00"),
        sale(line_number="6", order_ts="2026-13-45 99:00:00"),
    ]))
    reasons = dict(zip(out.quarantine["line_number"], out.quarantine["reject_reasons"].to_list()))
    assert reasons == {
        "1": ["return_before_order"], "2": ["invalid_return_quantity"], "3": ["invalid_return_amount"],
        "4": ["order_outside_late_window"], "5": ["order_after_drop_date"], "6": ["invalid_order_ts"],
    }
    assert out.clean.height == 0


def customer(**kw) -> dict:
    row = {
        "customer_id": "C1", "name": "  ada   LOVELACE ", "email": "  Ada@Example.COM ", "phone": "(555) 123-4567",
        "gender": "F", "age_group": "26-35", "postal_code": " 90210-ab ", "customer_segment": "Regular",
        "created_at": "2026-01-01 08:00:00", "updated_at": "2026-09-01 08:00:00",
    }
    return {**row, **kw}


def test_customer_fields_are_cleaned_as_the_spec_says():
    out = rules.clean_customers(bronze("customer", [customer(phone="+1 555.123.4567")]))
    row = out.clean.row(0, named=True)
    assert (row["name"], row["email"], row["phone"], row["postal_code"]) == ("Ada Lovelace", "ada@example.com", "+15551234567", "90210-AB")
    assert row["created_at"] == dt.datetime(2026, 1, 1, 8, tzinfo=dt.timezone.utc)
    assert row["data_quality_score"] == 1.0


def test_invalid_age_group_and_gender_are_nulled_and_lower_the_quality_score():
    out = rules.clean_customers(bronze("customer", [customer(age_group="17-", gender="male")]))
    row = out.clean.row(0, named=True)
    assert (row["age_group"], row["gender"], row["data_quality_score"]) == (None, None, 0.5)
    assert out.quarantine.height == 0


def test_duplicate_email_keeps_the_earlier_created_customer():
    out = rules.clean_customers(bronze("customer", [
        customer(customer_id="C2", created_at="2026-05-01 00:00:00"),
        customer(customer_id="C1", created_at="2026-01-01 00:00:00", email="ada@example.com"),
        customer(customer_id="C3", email="not-an-email"),
        customer(customer_id=None),
    ]))
    assert out.clean["customer_id"].to_list() == ["C1"]
    reasons = {r["customer_id"]: r["reject_reasons"] for r in out.quarantine.iter_rows(named=True)}
    assert reasons == {"C2": ["duplicate_email"], "C3": ["invalid_email"], None: ["required_customer_id"]}


def test_customer_history_keeps_every_valid_version_for_scd2():
    v1 = bronze("customer", [customer()])
    v2 = bronze("customer", [customer(customer_segment="VIP", updated_at="2026-09-05 09:00:00")], drop_date=D + dt.timedelta(days=4))
    out = rules.clean_customers(pl.concat([v1, v2]))
    assert out.history["customer_segment"].to_list() == ["Regular", "VIP"]
    assert out.clean["customer_segment"].to_list() == ["VIP"]


def test_every_bronze_row_is_accounted_for_on_every_drop_date():
    day1 = bronze("sales_returns", [sale(), sale(), sale(line_number="2", customer_id=None), sale(line_number="3")])
    day2 = bronze("sales_returns", [sale(is_returned="1", return_date="2026-09-02", return_quantity="1", return_amount="1.00"),
                                    sale(line_number="3", quantity="x")], drop_date=D + dt.timedelta(days=1))
    frame = pl.concat([day1, day2])
    balance = rules.conservation(frame, rules.clean_sales(frame))
    assert balance.rows() == [(D, 4, 1, 1, 2, 0, True), (D + dt.timedelta(days=1), 2, 1, 1, 0, 0, True)]


def test_payment_refund_may_not_exceed_the_amount_and_money_stays_decimal():
    out = rules.clean_payments(bronze("payment_refund", [
        {"payment_id": "PAY1", "order_id": "O1", "amount": "21.58", "transaction_ts": "2026-09-01 10:00:05", "is_refunded": "1", "refund_amount": "21.58"},
        {"payment_id": "PAY2", "order_id": "O2", "amount": "5.00", "transaction_ts": "2026-09-01 10:00:05", "is_refunded": "1", "refund_amount": "5.01"},
    ]))
    assert out.clean["refund_amount"].to_list() == [Decimal("21.58")]
    assert out.quarantine["reject_reasons"].to_list() == [["refund_exceeds_amount"]]


def test_inventory_snapshot_must_be_for_its_drop_date():
    out = rules.clean_inventory(bronze("inventory", [
        {"snapshot_date": "2026-09-01", "store_id": "S1", "product_id": "P1", "quantity_on_hand": "5", "reorder_point": "2"},
        {"snapshot_date": "2026-08-31", "store_id": "S1", "product_id": "P2", "quantity_on_hand": "5", "reorder_point": "2"},
        {"snapshot_date": "2026-09-01", "store_id": "S1", "product_id": "P3", "quantity_on_hand": "-1", "reorder_point": "2"},
    ]))
    assert out.clean["product_id"].to_list() == ["P1"]
    assert sorted(r[0] for r in out.quarantine["reject_reasons"].to_list()) == ["negative_quantity_on_hand", "snapshot_date_mismatch"]
