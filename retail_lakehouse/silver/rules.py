"""Silver rules (SPEC §4 "Silver"; seed 000 §2.2, §3.1): bronze text in, typed and validated out.

Pure Polars, no Dagster. Every bronze row ends in exactly one place: the clean table (the latest
valid version of its key), the quarantine (with the names of every rule it broke), or superseded
(a valid version that a later valid version of the same key replaced). Rows are validated first, so
a rejected version never replaces a valid one.

Rule names (the values of `reject_reasons`):
- `required_<column>`: a required column is empty.
- `invalid_<column>`: a value does not parse (timestamp, date, number, flag) or is not allowed.
- `negative_<column>` / `non_positive_quantity`: a range rule.
- `invalid_email`, `duplicate_email` (customer), `invalid_sales_channel` (sales).
- `return_before_order`, `invalid_return_quantity`, `invalid_return_amount` (sales),
  `refund_exceeds_amount` (payment).
- `order_after_drop_date`, `order_outside_late_window` (sales), `transaction_after_drop_date`,
  `transaction_outside_late_window` (payment): the row's business date must lie within the late-data
  window of its drop, so that each row has exactly one home when silver is computed per date;
  `order_before_first_partition`, `transaction_before_first_partition`: inside that window but
  before the first daily partition, where no partition can hold it.
- `snapshot_date_mismatch` (inventory): a snapshot must be for its drop's date.
"""

import datetime as dt
from dataclasses import dataclass

import polars as pl

from retail_lakehouse.contracts import (
    LINEAGE,
    MONEY,
    QUARANTINE_EXTRA,
    SILVER_CUSTOMER,
    SILVER_INVENTORY,
    SILVER_LOYALTY,
    SILVER_PAYMENT,
    SILVER_PRODUCT,
    SILVER_SALES,
    SILVER_STORE,
)

AGE_GROUPS = ("18-25", "26-35", "36-45", "46-55", "56-65", "65+")
GENDERS = ("M", "F", "Other", "Prefer not to say")
CHANNELS = {
    "online": "Online", "web": "Online",
    "store": "Store", "in-store": "Store", "instore": "Store", "pos": "Store",
    "mobile": "Mobile", "app": "Mobile", "mobile app": "Mobile",
}
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
ORDER = ("drop_date", "_source_file", "_row_number")


@dataclass(frozen=True)
class Cleaned:
    clean: pl.DataFrame
    quarantine: pl.DataFrame
    superseded: pl.DataFrame
    history: pl.DataFrame | None = None


def _text(c: str) -> pl.Expr:
    """Trimmed text, empty → null."""
    return pl.col(c).str.strip_chars().replace("", None)


def _ts(c: str) -> pl.Expr:
    return _text(c).str.strptime(pl.Datetime("us"), TIMESTAMP_FORMAT, strict=False).dt.replace_time_zone("UTC")


def _date(c: str) -> pl.Expr:
    return _text(c).str.strptime(pl.Date, "%Y-%m-%d", strict=False)


def _int(c: str, dtype=pl.Int64) -> pl.Expr:
    return _text(c).cast(dtype, strict=False)


# A plain decimal: optional sign, at most 12 integer digits, optional fraction. No exponent
# ("1e2"), no grouping ("1 000", "12,34": which separator is the decimal one?), and no 13+ digit
# amounts: no sale is that large, and such a value is more likely a card number in the wrong column.
_PLAIN_DECIMAL = r"^[+-]?(?:[0-9]{1,12}(?:\.[0-9]*)?|\.[0-9]+)$"


def _money(c: str) -> pl.Expr:
    # Text straight to Decimal: money never passes through a float. Extra decimals round half-even.
    text = _text(c)
    plain = pl.when(text.str.contains(_PLAIN_DECIMAL)).then(text)
    return plain.cast(pl.Decimal(38, 6), strict=False).round(2).cast(MONEY, strict=False)


def _flag(c: str) -> pl.Expr:
    v = _text(c).str.to_lowercase()
    return pl.when(v.is_in(["1", "true", "y", "yes"])).then(True).when(v.is_in(["0", "false", "n", "no"])).then(False)


def _unparsed(raw: str, parsed: str) -> pl.Expr:
    """Delivered but not understood."""
    return _text(raw).is_not_null() & pl.col(parsed).is_null()


def _clean_rows(
    bronze: pl.DataFrame,
    source_columns: list[str],
    typed: dict[str, pl.Expr],
    rules: list[tuple[str, pl.Expr]],
    keys: list[str],
    schema: dict,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Type, validate, quarantine and deduplicate. Returns (latest, quarantine, superseded, valid)."""
    frame = bronze.sort(ORDER, maintain_order=True).with_columns(
        **{f"__{k}": v for k, v in typed.items()}
    )
    # Rules become boolean columns first; the list of reasons is built only for the few rows that
    # broke one (a list expression over every row costs seconds at a million rows).
    flags = [f"__rule_{i}" for i in range(len(rules))]
    frame = frame.with_columns(**{f: cond.fill_null(False) for f, (_, cond) in zip(flags, rules)})
    broken = pl.any_horizontal(flags) if flags else pl.lit(False)
    rejected = frame.filter(broken).with_columns(
        pl.concat_list(
            [pl.when(pl.col(f)).then(pl.lit(name)).otherwise(pl.lit(None, pl.String)) for f, (name, _) in zip(flags, rules)]
        )
        .list.drop_nulls()
        .alias("reject_reasons")
    )
    quarantine = rejected.select(*source_columns, "reject_reasons", *LINEAGE)
    valid = frame.filter(~broken).select(*[pl.col(f"__{k}").alias(k) for k in typed], *LINEAGE)
    is_latest = pl.struct(keys).is_last_distinct()
    latest = valid.filter(is_latest)
    superseded = valid.filter(~is_latest).select(*keys, *LINEAGE)
    def to_contract(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select([pl.col(c).cast(t) for c, t in schema.items()])

    quarantine = quarantine.cast({"reject_reasons": QUARANTINE_EXTRA["reject_reasons"]})
    return to_contract(latest), quarantine, superseded, to_contract(valid)


def _source_columns(bronze: pl.DataFrame) -> list[str]:
    return [c for c in bronze.columns if not c.startswith("_") and c != "drop_date"]


def _col(name: str) -> pl.Expr:
    return pl.col(f"__{name}")


def clean_customers(bronze: pl.DataFrame) -> Cleaned:
    phone = pl.col("phone").str.strip_chars().str.replace_all(r"[^0-9+]", "").str.replace_all(r"(.)\+", "$1")
    postal = pl.col("postal_code").str.to_uppercase().str.replace_all(r"[^0-9A-Z-]", "")
    name = _text("name").str.replace_all(r"\s+", " ").str.to_titlecase()
    age = _text("age_group")
    gender = _text("gender")
    phone_ok = phone.str.count_matches(r"\d").is_between(7, 15)
    postal_ok = postal.str.len_chars().is_between(3, 10)
    typed = {
        "customer_id": _text("customer_id"),
        "name": name,
        "email": _text("email").str.to_lowercase(),
        "phone": phone.replace("", None),
        "gender": pl.when(gender.is_in(GENDERS)).then(gender),
        "age_group": pl.when(age.is_in(AGE_GROUPS)).then(age),
        "city": _text("city"),
        "state": _text("state"),
        "postal_code": postal.replace("", None),
        "country": _text("country"),
        "customer_segment": _text("customer_segment"),
        "created_at": _ts("created_at"),
        "updated_at": _ts("updated_at"),
        "data_quality_score": (
            age.is_in(AGE_GROUPS).fill_null(False).cast(pl.Float64)
            + gender.is_in(GENDERS).fill_null(False).cast(pl.Float64)
            + phone_ok.fill_null(False).cast(pl.Float64)
            + postal_ok.fill_null(False).cast(pl.Float64)
        )
        / 4.0,
    }
    rules = [
        ("required_customer_id", _col("customer_id").is_null()),
        ("required_email", _col("email").is_null()),
        ("invalid_email", _col("email").is_not_null() & ~_col("email").str.contains(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")),
        ("required_created_at", _text("created_at").is_null()),
        ("invalid_created_at", _unparsed("created_at", "__created_at")),
        ("required_updated_at", _text("updated_at").is_null()),
        ("invalid_updated_at", _unparsed("updated_at", "__updated_at")),
    ]
    src = _source_columns(bronze)
    latest, quarantine, superseded, valid = _clean_rows(bronze, src, typed, rules, ["customer_id"], SILVER_CUSTOMER)
    # duplicate_email: the earlier-created customer keeps an email; other customer_ids' versions
    # holding it are rejected. Decided over every valid version, so history and latest agree.
    owner = (
        valid.group_by("email", "customer_id")
        .agg(pl.col("created_at").min().alias("first_created"))
        .sort("email", "first_created", "customer_id", nulls_last=True)
        .group_by("email", maintain_order=True)
        .first()
        .select("email", pl.col("customer_id").alias("__owner"))
    )
    flagged = valid.join(owner, on="email", how="left").with_columns(
        (pl.col("customer_id") != pl.col("__owner")).alias("__dup")
    )
    if flagged["__dup"].any():
        dups = flagged.filter(pl.col("__dup"))
        valid = flagged.filter(~pl.col("__dup")).drop("__owner", "__dup")
        lineage = dups.select(*LINEAGE)
        originals = bronze.join(lineage, on=list(LINEAGE), how="semi").select(*src, *LINEAGE).with_columns(
            pl.lit(["duplicate_email"]).alias("reject_reasons")
        ).select(*src, "reject_reasons", *LINEAGE)
        quarantine = pl.concat([quarantine, originals.cast({"reject_reasons": pl.List(pl.String)})])
        is_latest = pl.col("customer_id").is_last_distinct()
        latest = valid.filter(is_latest)
        superseded = valid.filter(~is_latest).select("customer_id", *LINEAGE)
    return Cleaned(latest, quarantine, superseded, history=valid)


def clean_products(bronze: pl.DataFrame) -> Cleaned:
    typed = {
        "product_id": _text("product_id"),
        **{c: _text(c) for c in ("sku", "name", "category", "subcategory", "brand", "supplier_id")},
        "cost": _money("cost"),
        "list_price": _money("list_price"),
        "updated_at": _ts("updated_at"),
    }
    rules = [
        ("required_product_id", _col("product_id").is_null()),
        ("invalid_cost", _col("cost").is_null()),
        ("invalid_list_price", _col("list_price").is_null()),
        ("negative_cost", _col("cost") < 0),
        ("negative_list_price", _col("list_price") < 0),
        ("invalid_updated_at", _unparsed("updated_at", "__updated_at")),
    ]
    latest, q, s, valid = _clean_rows(bronze, _source_columns(bronze), typed, rules, ["product_id"], SILVER_PRODUCT)
    return Cleaned(latest, q, s, history=valid)


def clean_stores(bronze: pl.DataFrame) -> Cleaned:
    typed = {
        "store_id": _text("store_id"),
        **{c: _text(c) for c in ("name", "region", "format")},
        "square_footage": _int("square_footage"),
        "opened_date": _date("opened_date"),
    }
    rules = [
        ("required_store_id", _col("store_id").is_null()),
        ("invalid_square_footage", _unparsed("square_footage", "__square_footage")),
        ("negative_square_footage", _col("square_footage") < 0),
        ("invalid_opened_date", _unparsed("opened_date", "__opened_date")),
    ]
    latest, q, s, _ = _clean_rows(bronze, _source_columns(bronze), typed, rules, ["store_id"], SILVER_STORE)
    return Cleaned(latest, q, s)


def _late_window_rules(prefix: str, business_date: str, late_days: int, first_day: dt.date | None) -> list[tuple[str, pl.Expr]]:
    day = _col(business_date)
    rules = [
        (f"{prefix}_after_drop_date", day > pl.col("drop_date")),
        (f"{prefix}_outside_late_window", day < pl.col("drop_date") - pl.duration(days=late_days)),
    ]
    if first_day is not None:
        # Inside the late window but before the first daily partition: there is no partition to
        # hold the row, so it is kept here instead of vanishing between bronze and silver.
        rules.append((f"{prefix}_before_first_partition", day < first_day))
    return rules


def clean_sales(bronze: pl.DataFrame, late_days: int = 30, first_day: dt.date | None = None) -> Cleaned:
    returned = _flag("is_returned")
    order_ts = _ts("order_ts")
    quantity = _int("quantity", pl.Int32)
    price, discount, tax = _money("unit_price"), _money("discount_amount"), _money("tax_amount")
    total = (
        quantity.cast(pl.Decimal(38, 2)) * price - discount.fill_null(0) + tax.fill_null(0)
    ).round(2)
    is_ret = returned.fill_null(False)
    typed = {
        "order_id": _text("order_id"),
        "line_number": _int("line_number", pl.Int32),
        "customer_id": _text("customer_id"),
        "product_id": _text("product_id"),
        "store_id": _text("store_id"),
        "order_ts": order_ts,
        "order_date": order_ts.dt.date(),
        "delivery_date": _date("delivery_date"),
        "quantity": quantity,
        "unit_price": price,
        "discount_amount": pl.when(_text("discount_amount").is_null()).then(pl.lit(0).cast(MONEY)).otherwise(discount),
        "tax_amount": pl.when(_text("tax_amount").is_null()).then(pl.lit(0).cast(MONEY)).otherwise(tax),
        "sales_total": total,
        "sales_channel": _text("sales_channel").str.to_lowercase().replace_strict(CHANNELS, default=None),
        "order_status": _text("order_status"),
        "is_returned": returned,
        "return_date": pl.when(is_ret).then(_date("return_date")),
        "return_reason": pl.when(is_ret).then(_text("return_reason")),
        "return_quantity": pl.when(is_ret).then(_int("return_quantity", pl.Int32)),
        "return_amount": pl.when(is_ret).then(_money("return_amount")),
    }
    ret = _col("is_returned").fill_null(False)
    rules = [
        *[(f"required_{c}", _col(c).is_null() & _text(c).is_null()) for c in ("order_id", "line_number", "customer_id", "product_id")],
        ("invalid_line_number", _unparsed("line_number", "__line_number")),
        ("required_order_ts", _text("order_ts").is_null()),
        ("invalid_order_ts", _unparsed("order_ts", "__order_ts")),
        ("required_quantity", _text("quantity").is_null()),
        ("invalid_quantity", _unparsed("quantity", "__quantity")),
        ("non_positive_quantity", _col("quantity") <= 0),
        ("required_unit_price", _text("unit_price").is_null()),
        ("invalid_unit_price", _unparsed("unit_price", "__unit_price")),
        ("negative_unit_price", _col("unit_price") < 0),
        ("invalid_discount_amount", _col("discount_amount").is_null()),
        ("negative_discount_amount", _col("discount_amount") < 0),
        ("invalid_tax_amount", _col("tax_amount").is_null()),
        ("negative_tax_amount", _col("tax_amount") < 0),
        ("invalid_sales_channel", _col("sales_channel").is_null()),
        ("invalid_is_returned", _col("is_returned").is_null()),
        ("invalid_delivery_date", _unparsed("delivery_date", "__delivery_date")),
        ("return_before_order", ret & (_col("return_date").is_null() | (_col("return_date") < _col("order_date")))),
        ("invalid_return_quantity", ret & ~(_col("return_quantity") > 0).fill_null(False) | ret & (_col("return_quantity") > _col("quantity"))),
        ("invalid_return_amount", ret & (_col("return_amount").is_null() | (_col("return_amount") < 0) | (_col("return_amount") > _col("sales_total")))),
        *_late_window_rules("order", "order_date", late_days, first_day),
    ]
    latest, q, s, _ = _clean_rows(bronze, _source_columns(bronze), typed, rules, ["order_id", "line_number"], SILVER_SALES)
    return Cleaned(latest, q, s)


def clean_payments(bronze: pl.DataFrame, late_days: int = 30, first_day: dt.date | None = None) -> Cleaned:
    ts = _ts("transaction_ts")
    typed = {
        "payment_id": _text("payment_id"),
        "order_id": _text("order_id"),
        "payment_type": _text("payment_type"),
        "card_brand": _text("card_brand"),
        "card_token": _text("card_token"),
        "card_last4": _text("card_last4"),
        "amount": _money("amount"),
        "payment_status": _text("payment_status"),
        "transaction_ts": ts,
        "transaction_date": ts.dt.date(),
        "is_refunded": _flag("is_refunded"),
        "refund_amount": _money("refund_amount"),
        "refund_reason": _text("refund_reason"),
        "refund_status": _text("refund_status"),
        "refund_date": _date("refund_date"),
    }
    rules = [
        ("required_payment_id", _col("payment_id").is_null()),
        ("required_order_id", _col("order_id").is_null()),
        ("invalid_amount", _col("amount").is_null()),
        ("negative_amount", _col("amount") < 0),
        ("invalid_refund_amount", _unparsed("refund_amount", "__refund_amount")),
        ("negative_refund_amount", _col("refund_amount") < 0),
        ("refund_exceeds_amount", _col("refund_amount") > _col("amount")),
        ("invalid_transaction_ts", _col("transaction_ts").is_null()),
        ("invalid_is_refunded", _col("is_refunded").is_null()),
        ("invalid_refund_date", _unparsed("refund_date", "__refund_date")),
        *_late_window_rules("transaction", "transaction_date", late_days, first_day),
    ]
    latest, q, s, _ = _clean_rows(bronze, _source_columns(bronze), typed, rules, ["payment_id"], SILVER_PAYMENT)
    return Cleaned(latest, q, s)


def clean_inventory(bronze: pl.DataFrame) -> Cleaned:
    typed = {
        "snapshot_date": _date("snapshot_date"),
        "store_id": _text("store_id"),
        "product_id": _text("product_id"),
        "quantity_on_hand": _int("quantity_on_hand"),
        "reorder_point": _int("reorder_point"),
    }
    rules = [
        ("required_snapshot_date", _col("snapshot_date").is_null()),
        ("required_store_id", _col("store_id").is_null()),
        ("required_product_id", _col("product_id").is_null()),
        ("invalid_quantity_on_hand", _col("quantity_on_hand").is_null()),
        ("negative_quantity_on_hand", _col("quantity_on_hand") < 0),
        ("invalid_reorder_point", _col("reorder_point").is_null()),
        ("negative_reorder_point", _col("reorder_point") < 0),
        ("snapshot_date_mismatch", _col("snapshot_date") != pl.col("drop_date")),
    ]
    keys = ["snapshot_date", "store_id", "product_id"]
    latest, q, s, _ = _clean_rows(bronze, _source_columns(bronze), typed, rules, keys, SILVER_INVENTORY)
    return Cleaned(latest, q, s)


def clean_loyalty(bronze: pl.DataFrame) -> Cleaned:
    typed = {
        "event_id": _text("event_id"),
        "customer_id": _text("customer_id"),
        "event_ts": _ts("event_ts"),
        "event_type": _text("event_type"),
        "points_earned": _int("points_earned").fill_null(pl.when(_text("points_earned").is_null()).then(0)),
        "points_redeemed": _int("points_redeemed").fill_null(pl.when(_text("points_redeemed").is_null()).then(0)),
    }
    rules = [
        ("required_event_id", _col("event_id").is_null()),
        ("required_customer_id", _col("customer_id").is_null()),
        ("invalid_event_ts", _col("event_ts").is_null()),
        ("invalid_points_earned", _col("points_earned").is_null()),
        ("invalid_points_redeemed", _col("points_redeemed").is_null()),
        ("negative_points_earned", _col("points_earned") < 0),
        ("negative_points_redeemed", _col("points_redeemed") < 0),
    ]
    latest, q, s, _ = _clean_rows(bronze, _source_columns(bronze), typed, rules, ["event_id"], SILVER_LOYALTY)
    return Cleaned(latest, q, s)


def conservation(
    bronze: pl.DataFrame,
    cleaned: Cleaned,
    silver: pl.DataFrame | None = None,
    days: list[dt.date] | None = None,
    pending: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Per drop date: bronze rows = silver + quarantined + superseded + pending, each counted by its
    own lineage.

    `silver` is the lineage of the rows the table holds after the write, when that differs from
    `cleaned.clean` (a run that writes only some partitions); `pending` the latest valid rows that
    belong to partitions outside such a run and wait for a run of theirs; `days` fixes the drop
    dates reported.
    """

    def count(frame: pl.DataFrame, name: str) -> pl.DataFrame:
        return frame.group_by("drop_date").agg(pl.len().cast(pl.Int64).alias(name))

    out = (
        pl.DataFrame({"drop_date": days}, schema={"drop_date": pl.Date})
        if days is not None
        else bronze.select("drop_date").unique()
    )
    no_rows = bronze.select("drop_date").clear()
    parts = ((bronze, "bronze_rows"), (cleaned.clean if silver is None else silver, "silver_rows"),
             (cleaned.quarantine, "quarantined_rows"), (cleaned.superseded, "superseded_rows"),
             (no_rows if pending is None else pending, "pending_rows"))
    for frame, name in parts:
        out = out.join(count(frame, name), on="drop_date", how="left")
    out = out.with_columns(pl.exclude("drop_date").fill_null(0))
    accounted = pl.col("silver_rows") + pl.col("quarantined_rows") + pl.col("superseded_rows") + pl.col("pending_rows")
    return out.with_columns((pl.col("bronze_rows") == accounted).alias("balanced")).sort("drop_date")
