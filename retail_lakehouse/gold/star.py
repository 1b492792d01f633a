"""Gold: the star schema and the seed 000 §9 reports (SPEC §4 "Gold"; seed 000 §1.3; seed 004 data model).

Pure functions, no Dagster: silver frames in (schemas in `retail_lakehouse.contracts`), gold frames
out, each conformed to the schema constant of the same name exported here and sorted by its keys, so
that two runs over the same input write identical tables.

Surrogate keys come from `stable_key`, a hash of the natural key's canonical text that does not depend
on the run, the machine or the Polars release; −1 (`UNKNOWN_KEY`) is the unknown member every
dimension carries for facts whose id the dimension does not (yet) hold.

Money stays Decimal(18, 2) end to end. Ratios (averages, rates) are computed exactly with Python
fractions over the few aggregate rows and rounded half-even, never through floats.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from hashlib import blake2b

import polars as pl

from retail_lakehouse.catalog import TIMESTAMP, schema
from retail_lakehouse.contracts import SILVER_CUSTOMER, SILVER_PAYMENT, SILVER_PRODUCT, SILVER_SALES, SILVER_STORE

UNKNOWN_KEY = -1
UNKNOWN_ID = "UNKNOWN"
UNKNOWN_NAME = "Unknown"
# Early enough to precede every real version, so the unknown member is valid at any order time.
UNKNOWN_VALID_FROM = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)

# Canonical text of a key: fields joined by the ASCII unit separator, null as NUL. Ids are printable
# text, where neither control character occurs, so distinct keys render to distinct text.
KEY_SEPARATOR = "\x1f"
KEY_NULL = "\x00"
KEY_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.6fZ"
KEY_DATE_FORMAT = "%Y-%m-%d"
_KEY_MASK = (1 << 63) - 1

DELIVERY_ORDER = ("drop_date", "_source_file", "_row_number")

# The schemas of the tables built here are declared in the catalog (`retail_lakehouse.catalog`).
DIM_CUSTOMER_SCHEMA = schema("gold", "dim_customer")
DIM_PRODUCT_SCHEMA = schema("gold", "dim_product")
DIM_STORE_SCHEMA = schema("gold", "dim_store")
DIM_DATE_SCHEMA = schema("gold", "dim_date")
FACT_SALES_SCHEMA = schema("gold", "fact_sales")
FACT_PAYMENT_SCHEMA = schema("gold", "fact_payment")
AGG_DAILY_SALES_SCHEMA = schema("gold", "agg_daily_sales")
SALES_PERFORMANCE_SCHEMA = schema("gold", "sales_performance")
CUSTOMER_LIFETIME_VALUE_SCHEMA = schema("gold", "customer_lifetime_value")
PRODUCT_RETURN_ANALYSIS_SCHEMA = schema("gold", "product_return_analysis")

GOLD_SCHEMAS = {
    "dim_customer": DIM_CUSTOMER_SCHEMA,
    "dim_product": DIM_PRODUCT_SCHEMA,
    "dim_store": DIM_STORE_SCHEMA,
    "dim_date": DIM_DATE_SCHEMA,
    "fact_sales": FACT_SALES_SCHEMA,
    "fact_payment": FACT_PAYMENT_SCHEMA,
    "agg_daily_sales": AGG_DAILY_SALES_SCHEMA,
    "sales_performance": SALES_PERFORMANCE_SCHEMA,
    "customer_lifetime_value": CUSTOMER_LIFETIME_VALUE_SCHEMA,
    "product_return_analysis": PRODUCT_RETURN_ANALYSIS_SCHEMA,
}

# A dimension's tracked attributes: its columns between the keys and the validity interval.
_VALIDITY = ("valid_from", "valid_to", "is_current")
CUSTOMER_ATTRIBUTES = tuple(c for c in DIM_CUSTOMER_SCHEMA if c not in ("customer_key", "customer_id", *_VALIDITY))
PRODUCT_ATTRIBUTES = tuple(c for c in DIM_PRODUCT_SCHEMA if c not in ("product_key", "product_id", *_VALIDITY))
STORE_ATTRIBUTES = tuple(c for c in DIM_STORE_SCHEMA if c not in ("store_key", "store_id"))

_SALES_LINE = (
    "store_id", "order_date", "delivery_date", "quantity", "unit_price", "discount_amount", "tax_amount",
    "sales_total", "sales_channel", "order_status", "is_returned", "return_date", "return_reason",
    "return_quantity", "return_amount",
)
_PAYMENT_COLUMNS = tuple(c for c in FACT_PAYMENT_SCHEMA if c != "load_timestamp")


def _canonical_text(column: pl.Series) -> pl.Series:
    """The text a key field hashes as: fixed formats, so a Polars release cannot change a key."""
    dtype = column.dtype
    if dtype == pl.String:
        text = column
    elif dtype.is_integer():
        text = column.cast(pl.String)
    elif dtype == pl.Date:
        text = column.dt.to_string(KEY_DATE_FORMAT)
    elif isinstance(dtype, pl.Datetime):
        instant = column.dt.convert_time_zone("UTC") if dtype.time_zone else column.dt.replace_time_zone("UTC")
        text = instant.dt.cast_time_unit("us").dt.to_string(KEY_DATETIME_FORMAT)
    elif isinstance(dtype, (pl.Categorical, pl.Enum)):
        text = column.cast(pl.String)
    else:
        # Floats and decimals have no single text form (1.0 vs 1, 2.50 vs 2.5): not key material.
        raise TypeError(f"stable_key: column {column.name!r} of type {dtype} cannot be part of a key")
    return text.fill_null(KEY_NULL)


def _hash_fields(fields: list[pl.Series]) -> pl.Series:
    if not fields:
        raise ValueError("stable_key needs at least one column")
    texts = pl.DataFrame([_canonical_text(f).alias(f"_{i}") for i, f in enumerate(fields)])
    canonical = texts.select(pl.concat_str(pl.all(), separator=KEY_SEPARATOR).cast(pl.Binary)).to_series()
    from_bytes = int.from_bytes
    # Python's blake2b: a fixed algorithm, unlike Polars' hash; ~0.5 s per million keys.
    keys = [from_bytes(blake2b(text, digest_size=8).digest(), "big") & _KEY_MASK for text in canonical.to_list()]
    return pl.Series("stable_key", keys, dtype=pl.Int64)


def stable_key(*columns: pl.Series | pl.Expr | str) -> pl.Series | pl.Expr:
    """Deterministic Int64 surrogate key of one or more key columns.

    The key of a row is blake2b (8-byte digest) of its fields' canonical text joined by
    KEY_SEPARATOR, read big-endian and masked to 63 bits: never negative, so never UNKNOWN_KEY.
    Canonical text: strings as they are, integers in decimal, dates as yyyy-mm-dd, timestamps in
    UTC as yyyy-mm-ddThh:mm:ss.ffffffZ (a naive timestamp is taken as UTC), null as KEY_NULL.

    All Series in: a Series out. Any expression or column name in: an expression to use in
    `select` / `with_columns`.
    """
    if all(isinstance(c, pl.Series) for c in columns):
        return _hash_fields(list(columns))
    if any(isinstance(c, pl.Series) for c in columns):
        raise TypeError("stable_key: pass all Series, or only expressions and column names")
    exprs = [pl.col(c) if isinstance(c, str) else c for c in columns]
    # Aliased because a struct cannot hold two fields of one name, e.g. a column keyed twice.
    fields = pl.struct([e.alias(f"_{i}") for i, e in enumerate(exprs)])
    return fields.map_batches(
        lambda s: _hash_fields(s.struct.unnest().get_columns()), return_dtype=pl.Int64, is_elementwise=True
    ).alias("stable_key")


def _require(frame: pl.DataFrame, contract: dict[str, pl.DataType], columns: Iterable[str], what: str) -> None:
    """Fail with every mismatch named, rather than with a join or cast error deep inside."""
    problems = []
    for name in columns:
        if name not in frame.schema:
            problems.append(f"{name} missing")
        elif frame.schema[name] != contract[name]:
            problems.append(f"{name} is {frame.schema[name]}, expected {contract[name]}")
    if problems:
        raise ValueError(f"{what} does not match its contract: " + "; ".join(problems))


def _conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Exactly the schema's columns in its order; strict casts, so an overflow fails loudly."""
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


def _utc(timestamp: dt.datetime) -> dt.datetime:
    if timestamp.tzinfo is None:
        return timestamp.replace(tzinfo=dt.timezone.utc)
    return timestamp.astimezone(dt.timezone.utc)


def _exact(frame: pl.DataFrame, column: str) -> tuple[pl.Expr, int]:
    """A column as (an integer expression, its decimal scale): value = integer / 10**scale, exactly."""
    dtype = frame.schema[column]
    if isinstance(dtype, pl.Decimal):
        return pl.col(column).to_physical().cast(pl.Int128), dtype.scale
    return pl.col(column).cast(pl.Int128), 0


def _ratio(frame: pl.DataFrame, numerator: str, denominator: str, *, scale: int = 1) -> pl.Series:
    """numerator × scale / denominator per row, half-even to 2 places; null where the denominator is 0.

    Exact, in 128-bit integers: the quotient in cents is p / q with integer p and q (q > 0), so its
    floor and remainder decide the rounding without a float or a Python loop."""
    (n, n_scale), (d, d_scale) = _exact(frame, numerator), _exact(frame, denominator)
    sign = pl.when(d < 0).then(-1).otherwise(1).cast(pl.Int128)
    parts = frame.select(
        (n * sign * (scale * 100 * 10**d_scale)).alias("p"), pl.when(d != 0).then(d * sign * 10**n_scale).alias("q")
    ).with_columns(floor=pl.col("p") // pl.col("q"))
    twice_rest = (pl.col("p") - pl.col("floor") * pl.col("q")) * 2
    up = (twice_rest > pl.col("q")) | ((twice_rest == pl.col("q")) & (pl.col("floor") % 2 == 1))
    cents = pl.col("floor") + up.cast(pl.Int128)
    return parts.select((cents.cast(pl.Decimal(38, 0)) * pl.lit(Decimal("0.01"))).cast(pl.Decimal(18, 2)).alias(numerator)).to_series()


def _unknown_member(
    schema: dict[str, pl.DataType], key: str, natural_key: str, extra: dict[str, object]
) -> pl.DataFrame:
    row = {name: None for name in schema} | {key: UNKNOWN_KEY, natural_key: UNKNOWN_ID, "name": UNKNOWN_NAME} | extra
    return pl.DataFrame([row], schema=schema)


def _scd2(
    history: pl.DataFrame,
    *,
    natural_key: str,
    key: str,
    attributes: tuple[str, ...],
    schema: dict[str, pl.DataType],
    created_at: str | None,
) -> pl.DataFrame:
    """SCD Type 2 from every valid version of each natural key.

    Versions are ordered by updated_at, then delivery order. Of several versions stamped with the
    same updated_at the last delivered wins (the SPEC's "latest delivered version"); two versions may
    not share a valid_from, since the surrogate key is derived from it. A version identical in every
    tracked attribute to its predecessor is no change and folds into it, keeping the earlier start.
    """
    # A version without updated_at was known no later than its drop's date.
    effective = pl.coalesce(pl.col("updated_at"), pl.col("drop_date").cast(TIMESTAMP))
    ordered = (
        history.with_columns(_effective=effective)
        .sort([natural_key, "_effective", *DELIVERY_ORDER], nulls_last=True)
        .unique(subset=[natural_key, "_effective"], keep="last", maintain_order=True)
    )
    starts_key = pl.col(natural_key).ne_missing(pl.col(natural_key).shift(1))
    changed = pl.any_horizontal([pl.col(a).ne_missing(pl.col(a).shift(1)) for a in attributes])
    versions = ordered.filter(starts_key | changed).with_columns(_first=starts_key)

    valid_from = pl.col("_effective")
    if created_at is not None:
        # A customer existed from its creation, even if its first delivered version is stamped later.
        valid_from = (
            pl.when(pl.col("_first") & (pl.col(created_at) < pl.col("_effective")))
            .then(pl.col(created_at))
            .otherwise(pl.col("_effective"))
        )
    next_is_same_key = pl.col("_first").shift(-1).not_()
    versions = versions.with_columns(valid_from=valid_from).with_columns(
        valid_to=pl.when(next_is_same_key).then(pl.col("valid_from").shift(-1)),
    )
    versions = versions.with_columns(
        is_current=pl.col("valid_to").is_null(),
        **{key: stable_key(natural_key, "valid_from")},
    )
    unknown = _unknown_member(schema, key, natural_key, {"valid_from": UNKNOWN_VALID_FROM, "is_current": True})
    return pl.concat([unknown, _conform(versions, schema)])


def build_dim_customer(history: pl.DataFrame) -> pl.DataFrame:
    """dim_customer, SCD Type 2: one row per customer version, plus the unknown member.

    `history` holds every valid silver version (SILVER_CUSTOMER). A customer's first version starts
    at its created_at when that is earlier than its updated_at.
    """
    needed = ("customer_id", *CUSTOMER_ATTRIBUTES, "created_at", "updated_at", *DELIVERY_ORDER)
    _require(history, SILVER_CUSTOMER, needed, "customer history")
    return _scd2(
        history, natural_key="customer_id", key="customer_key", attributes=CUSTOMER_ATTRIBUTES,
        schema=DIM_CUSTOMER_SCHEMA, created_at="created_at",
    )


def build_dim_product(history: pl.DataFrame) -> pl.DataFrame:
    """dim_product, SCD Type 2: one row per product version, plus the unknown member."""
    needed = ("product_id", *PRODUCT_ATTRIBUTES, "updated_at", *DELIVERY_ORDER)
    _require(history, SILVER_PRODUCT, needed, "product history")
    return _scd2(
        history, natural_key="product_id", key="product_key", attributes=PRODUCT_ATTRIBUTES,
        schema=DIM_PRODUCT_SCHEMA, created_at=None,
    )


def build_dim_store(stores: pl.DataFrame) -> pl.DataFrame:
    """dim_store, SCD Type 1: one row per store_id with its latest delivered attributes, plus the unknown member."""
    _require(stores, SILVER_STORE, ("store_id", *STORE_ATTRIBUTES, *DELIVERY_ORDER), "stores")
    current = (
        stores.sort(list(DELIVERY_ORDER), nulls_last=True)
        .unique(subset="store_id", keep="last", maintain_order=True)
        .sort("store_id")
        .with_columns(store_key=stable_key("store_id"))
    )
    unknown = _unknown_member(DIM_STORE_SCHEMA, "store_key", "store_id", {})
    return pl.concat([unknown, _conform(current, DIM_STORE_SCHEMA)])


def build_dim_date(first: dt.date, last: dt.date) -> pl.DataFrame:
    """dim_date: one row per calendar day from `first` to `last` inclusive; ISO weeks, Monday = 1."""
    if first > last:
        raise ValueError(f"dim_date: first day {first} is after last day {last}")
    days = pl.date_range(first, last, "1d", eager=True).alias("date")
    calendar = pl.DataFrame(days).with_columns(
        date_key=pl.col("date").dt.year() * 10_000 + pl.col("date").dt.month().cast(pl.Int32) * 100
        + pl.col("date").dt.day().cast(pl.Int32),
        year=pl.col("date").dt.year(),
        quarter=pl.col("date").dt.quarter(),
        month=pl.col("date").dt.month(),
        week=pl.col("date").dt.week(),
        day_of_week=pl.col("date").dt.weekday(),
        is_weekend=pl.col("date").dt.weekday() >= 6,
    )
    return _conform(calendar, DIM_DATE_SCHEMA)


def _version_lookup(dim: pl.DataFrame, natural_key: str, key: str) -> pl.DataFrame:
    """(natural key, start, key) per real version, sorted by start as join_asof needs.

    The first version of each id starts at the beginning of time: an order placed before the id's
    first recorded version still belongs to that id, and its first known state is the best match.
    """
    versions = (
        dim.filter(pl.col(key) != UNKNOWN_KEY).select(natural_key, "valid_from", key).sort(natural_key, "valid_from")
    )
    first = pl.col(natural_key).ne_missing(pl.col(natural_key).shift(1))
    beginning = pl.lit(dt.datetime.min.replace(tzinfo=dt.timezone.utc), dtype=TIMESTAMP)
    return versions.select(
        natural_key,
        pl.when(first).then(beginning).otherwise(pl.col("valid_from")).alias(f"_{key}_from"),
        key,
    ).sort(f"_{key}_from")


def _resolve_keys(sales: pl.DataFrame, dim_customer: pl.DataFrame, dim_product: pl.DataFrame) -> pl.DataFrame:
    """Sales lines with the customer and product keys of the versions valid at order_ts (null
    where the dimension does not hold the id), ordered by order_ts, order_id, line_number."""
    _require(dim_customer, DIM_CUSTOMER_SCHEMA, ("customer_key", "customer_id", "valid_from"), "dim_customer")
    _require(dim_product, DIM_PRODUCT_SCHEMA, ("product_key", "product_id", "valid_from"), "dim_product")
    # An order without a timestamp is matched at the start of its order date.
    at = pl.coalesce(pl.col("order_ts"), pl.col("order_date").cast(TIMESTAMP))
    # No nulls_last: it takes a slower sort path (5x at a million lines) and the order stays total.
    lines = sales.with_columns(_at=at).sort("_at", "order_id", "line_number")
    dims = ((dim_customer, "customer_id", "customer_key"), (dim_product, "product_id", "product_key"))
    for dim, natural_key, key in dims:
        lines = lines.join_asof(
            _version_lookup(dim, natural_key, key),
            left_on="_at",
            right_on=f"_{key}_from",
            by=natural_key,
            strategy="backward",
            # Both sides are sorted above; with `by` Polars cannot verify it and would only warn.
            check_sortedness=False,
        )
    return lines.with_columns(
        customer_key=pl.col("customer_key").fill_null(UNKNOWN_KEY),
        product_key=pl.col("product_key").fill_null(UNKNOWN_KEY),
    )


def build_fact_sales(
    sales: pl.DataFrame, dim_customer: pl.DataFrame, dim_product: pl.DataFrame, load_timestamp: dt.datetime
) -> pl.DataFrame:
    """fact_sales: one row per order line, keyed to the customer and product versions valid at order_ts.

    The version valid at order_ts is the one with valid_from ≤ order_ts < valid_to; an id the
    dimension does not hold maps to UNKNOWN_KEY until the dimension holds it, when
    `rekeyed_facts` re-keys the stored rows. Rows are ordered by order_ts, order_id,
    line_number.
    """
    needed = ("order_id", "line_number", "customer_id", "product_id", "order_ts", *_SALES_LINE)
    _require(sales, SILVER_SALES, needed, "sales")
    facts = _resolve_keys(sales, dim_customer, dim_product).with_columns(
        sales_id=stable_key("order_id", "line_number"),
        load_timestamp=pl.lit(_utc(load_timestamp), dtype=TIMESTAMP),
    )
    return _conform(facts, FACT_SALES_SCHEMA)


def _current_keys(sales: pl.DataFrame, dim_customer: pl.DataFrame, dim_product: pl.DataFrame) -> pl.DataFrame:
    """(order_id, line_number, order_date, customer_key, product_key): the keys the dimensions give each sales line now."""
    return _resolve_keys(
        sales.select("order_id", "line_number", "customer_id", "product_id", "order_ts", "order_date"), dim_customer, dim_product
    ).select("order_id", "line_number", "order_date", "customer_key", "product_key")


def _as_new_keys(current: pl.DataFrame) -> pl.DataFrame:
    """(order_id, line_number, _ck, _pk): current keys named apart from the stored ones they are joined to."""
    return current.select("order_id", "line_number", pl.col("customer_key").alias("_ck"), pl.col("product_key").alias("_pk"))


def _key_fingerprints(lines: pl.DataFrame) -> pl.DataFrame:
    """(order_date, _fp): per day, the XOR of one hash per line of its id and keys. A line's id is
    unique, so the XOR is the same for the same lines in any order, and changes with any key (but
    for a 64-bit hash collision)."""
    line = pl.struct(
        pl.col("order_id").cast(pl.String), pl.col("line_number").cast(pl.Int64),
        pl.col("customer_key").cast(pl.Int64), pl.col("product_key").cast(pl.Int64),
    )
    return lines.group_by("order_date").agg(line.hash().bitwise_xor().alias("_fp"))


def stale_days(sales: pl.DataFrame, fact_keys: pl.DataFrame, dim_customer: pl.DataFrame, dim_product: pl.DataFrame) -> list[dt.date]:
    """The order dates of stored facts whose keys the dimensions now resolve differently.

    `fact_keys` needs only order_id, line_number, order_date, customer_key and product_key of the
    stored facts, so a daily run reads five columns of the table, not every one. Only the days
    whose key fingerprints differ are compared line by line, since on most days no key has changed
    and a join of a year of lines on their text ids is a third of the comparison.
    """
    current = _current_keys(sales, dim_customer, dim_product)
    fingerprints = _key_fingerprints(current).join(_key_fingerprints(fact_keys), on="order_date", how="full", coalesce=True)
    differing = fingerprints.filter(pl.col("_fp").ne_missing(pl.col("_fp_right"))).get_column("order_date")
    if differing.is_empty():
        return []
    on_differing = pl.col("order_date").is_in(differing.implode())
    joined = fact_keys.filter(on_differing).join(_as_new_keys(current.filter(on_differing)), on=["order_id", "line_number"], how="inner")
    stale = joined.filter((pl.col("customer_key") != pl.col("_ck")) | (pl.col("product_key") != pl.col("_pk")))
    return sorted(stale.get_column("order_date").unique().to_list())


def rekeyed_facts(
    sales: pl.DataFrame, facts: pl.DataFrame, dim_customer: pl.DataFrame, dim_product: pl.DataFrame
) -> pl.DataFrame:
    """The stored fact rows of every order date `stale_days` finds, with the keys the dimensions give now.

    Late-arriving dimensions: a fact loaded before its customer or product arrived sits on the
    unknown member, one loaded before an earlier version arrived points at a later one. Keys are a
    pure function of the dimensions, so re-keying the stored rows makes the table what one clean
    run gives, whatever order the days were first loaded in; every other column stays as stored,
    so aggregates built from the facts still agree with them. `sales` needs the key columns of
    silver sales, `facts` the fact_sales schema.
    """
    days = stale_days(sales, facts, dim_customer, dim_product)
    now = _as_new_keys(_current_keys(sales.filter(pl.col("order_date").is_in(days)), dim_customer, dim_product))
    rows = facts.filter(pl.col("order_date").is_in(days)).join(now, on=["order_id", "line_number"], how="left")
    return _conform(
        rows.with_columns(customer_key=pl.coalesce("_ck", "customer_key"), product_key=pl.coalesce("_pk", "product_key"))
        .sort("order_date", "order_id", "line_number"),
        FACT_SALES_SCHEMA,
    )


def build_fact_payment(payments: pl.DataFrame, load_timestamp: dt.datetime) -> pl.DataFrame:
    """fact_payment: one row per payment with its refund folded in, ordered by transaction_date, payment_id."""
    _require(payments, SILVER_PAYMENT, _PAYMENT_COLUMNS, "payments")
    facts = payments.sort("transaction_date", "payment_id", nulls_last=True).with_columns(
        load_timestamp=pl.lit(_utc(load_timestamp), dtype=TIMESTAMP)
    )
    return _conform(facts, FACT_PAYMENT_SCHEMA)


def _daily(fact_sales: pl.DataFrame) -> pl.DataFrame:
    """The per (order date, channel) sums that agg_daily_sales and sales_performance share."""
    needed = ("order_id", "customer_id", "order_date", "quantity", "sales_total", "sales_channel", "is_returned")
    _require(fact_sales, FACT_SALES_SCHEMA, needed, "fact_sales")
    return (
        fact_sales.group_by(pl.col("order_date").alias("sales_date"), "sales_channel")
        .agg(
            total_revenue=pl.col("sales_total").sum(),
            total_quantity=pl.col("quantity").cast(pl.Int64).sum(),
            total_orders=pl.col("order_id").n_unique(),
            total_lines=pl.len(),
            unique_customers=pl.col("customer_id").n_unique(),
            return_count=pl.col("is_returned").fill_null(False).sum(),
        )
        .sort("sales_date", "sales_channel", nulls_last=True)
    )


def build_agg_daily_sales(fact_sales: pl.DataFrame) -> pl.DataFrame:
    """agg_daily_sales: one row per sales date and channel (seed 000 §1.3), avg_order_value = revenue / orders."""
    daily = _daily(fact_sales)
    daily = daily.with_columns(avg_order_value=_ratio(daily, "total_revenue", "total_orders"))
    return _conform(daily, AGG_DAILY_SALES_SCHEMA)


def build_sales_performance(fact_sales: pl.DataFrame) -> pl.DataFrame:
    """sales_performance (seed 000 §9.1): one row per sales date and channel, newest day first, then by revenue.

    The seed's 30-day filter is left to the reader of the table: a rolling window over today's
    date would make the table depend on the day it was built.
    """
    daily = _daily(fact_sales).rename(
        {"total_orders": "num_orders", "total_lines": "num_lines", "return_count": "returns"}
    )
    report = daily.with_columns(
        avg_line_value=_ratio(daily, "total_revenue", "num_lines"),
        return_rate=_ratio(daily, "returns", "num_lines", scale=100),
    ).sort(["sales_date", "total_revenue", "sales_channel"], descending=[True, True, False], nulls_last=True)
    return _conform(report, SALES_PERFORMANCE_SCHEMA)


def _current(dim: pl.DataFrame, natural_key: str, key: str, attributes: tuple[str, ...]) -> pl.DataFrame:
    return (
        dim.filter(pl.col("is_current") & (pl.col(key) != UNKNOWN_KEY))
        .sort(natural_key, "valid_from")
        .unique(subset=natural_key, keep="last", maintain_order=True)
        .select(natural_key, *attributes)
    )


# The columns each whole-table report reads of its inputs: checked against their contracts, and all
# that a run loads of a year of facts (a scan of 4 of fact_sales' 23 columns, not of every one).
CLV_READS = {
    "fact_sales": ("order_id", "customer_id", "order_date", "sales_total"),
    "dim_customer": ("customer_key", "customer_id", "name", "customer_segment", "valid_from", "is_current"),
}
RETURNS_READS = {
    "fact_sales": ("product_id", "quantity", "sales_total", "is_returned", "return_quantity", "return_amount"),
    "dim_product": ("product_key", "product_id", "name", "category", "valid_from", "is_current"),
}


def build_customer_lifetime_value(fact_sales: pl.DataFrame, dim_customer: pl.DataFrame) -> pl.DataFrame:
    """customer_lifetime_value (seed 000 §9.2): one row per customer_id with at least one sale.

    Name and segment are the customer's current ones (null for an id the dimension does not hold, so
    that the table still sums to the facts). Recency counts days back from the newest order date in
    the facts, not from today, so a rebuild gives the same table. Ordered by lifetime value, highest first.
    """
    _require(fact_sales, FACT_SALES_SCHEMA, CLV_READS["fact_sales"], "fact_sales")
    _require(dim_customer, DIM_CUSTOMER_SCHEMA, CLV_READS["dim_customer"], "dim_customer")
    newest = fact_sales["order_date"].max()
    customers = fact_sales.group_by("customer_id").agg(
        total_orders=pl.col("order_id").n_unique(),
        lifetime_value=pl.col("sales_total").sum(),
        first_purchase_date=pl.col("order_date").min(),
        last_purchase_date=pl.col("order_date").max(),
    )
    customers = customers.join(
        _current(dim_customer, "customer_id", "customer_key", ("name", "customer_segment")),
        on="customer_id", how="left", maintain_order="left",
    ).with_columns(
        days_since_purchase=(pl.lit(newest, dtype=pl.Date) - pl.col("last_purchase_date")).dt.total_days(),
    )
    report = customers.with_columns(avg_order_value=_ratio(customers, "lifetime_value", "total_orders")).sort(
        ["lifetime_value", "customer_id"], descending=[True, False], nulls_last=True
    )
    return _conform(report, CUSTOMER_LIFETIME_VALUE_SCHEMA)


def build_product_return_analysis(fact_sales: pl.DataFrame, dim_product: pl.DataFrame) -> pl.DataFrame:
    """product_return_analysis (seed 000 §9.3): one row per product_id with at least one sale.

    Name and category are the product's current ones (null for an id the dimension does not hold).
    Rates are percentages, null when their denominator is 0. Ordered by return rate, then lines sold,
    highest first.
    """
    _require(fact_sales, FACT_SALES_SCHEMA, RETURNS_READS["fact_sales"], "fact_sales")
    _require(dim_product, DIM_PRODUCT_SCHEMA, RETURNS_READS["dim_product"], "dim_product")
    returned = pl.col("is_returned").fill_null(False)
    products = fact_sales.group_by("product_id").agg(
        total_sales=pl.len(),
        total_units_sold=pl.col("quantity").cast(pl.Int64).sum(),
        units_returned=pl.col("return_quantity").cast(pl.Int64).filter(returned).sum(),
        total_revenue=pl.col("sales_total").sum(),
        total_refunds=pl.col("return_amount").filter(returned).sum(),
    )
    products = products.join(
        _current(dim_product, "product_id", "product_key", ("name", "category")),
        on="product_id", how="left", maintain_order="left",
    )
    report = products.with_columns(
        return_rate_pct=_ratio(products, "units_returned", "total_units_sold", scale=100),
        refund_rate_pct=_ratio(products, "total_refunds", "total_revenue", scale=100),
    ).sort(
        ["return_rate_pct", "total_sales", "product_id"], descending=[True, True, False], nulls_last=True
    )
    return _conform(report, PRODUCT_RETURN_ANALYSIS_SCHEMA)
