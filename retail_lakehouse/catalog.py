"""The table catalog: every table of the lakehouse declared once (SPEC §3, §4).

An entry is a table's whole contract: key `[layer, table]`, grain, columns (Polars type, required,
allowed values and ranges), unique key, partition column and late window, checks with their
severity and limits, owner and data classification. The rest derives from it: the column dicts the
transforms conform to (`schema`), the pandera contracts (`quality/contracts.py`), the check policy
(`quality/policy.py`) and what the Dagster UI shows (`retail_lakehouse.specs`).

Pure Python and Polars, no Dagster: the transforms import their schemas from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import polars as pl

from retail_lakehouse.bronze.transforms import bronze_columns
from retail_lakehouse.sources import ALL_SOURCES, DAILY_SOURCES, POS_COLUMNS, SOURCE_COLUMNS

# SPEC §3: money is Decimal(18, 2) from silver on, never float; timestamps are UTC.
MONEY = pl.Decimal(18, 2)
TIMESTAMP = pl.Datetime("us", "UTC")
# Two decimal places like money; wide because a rate over a near-zero revenue can be large.
PERCENT = pl.Decimal(18, 2)

AGE_GROUPS = ("18-25", "26-35", "36-45", "46-55", "56-65", "65+")
GENDERS = ("M", "F", "Other", "Prefer not to say")
SALES_CHANNELS = ("Mobile", "Online", "Store")
RFM_SEGMENTS = ("Champion", "Loyal", "At Risk", "Potential")
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

BRONZE, SILVER, GOLD, OPS = "bronze", "silver", "gold", "ops"
LAYERS = (BRONZE, SILVER, GOLD, OPS)
# Dagster owner strings are an email or "team:<name>".
OWNERS = {BRONZE: "team:data-engineering", SILVER: "team:data-engineering", GOLD: "team:analytics", OPS: "team:data-engineering"}

PII, FINANCIAL, INTERNAL = "pii", "financial", "internal"

# What a table is, so that lists of tables ("every clean silver table") come from here.
RAW, REJECTED, CLEAN, QUARANTINE, HISTORY = "raw", "rejected", "clean", "quarantine", "history"
DIMENSION, FACT, AGGREGATE, REPORT, AUDIT = "dimension", "fact", "aggregate", "report", "audit"
# Rebuilt whole from the facts by a model or a mining algorithm (seed 004 §3-5, seed 000 phase 6).
ANALYTICS = "analytics"
# Fed by the POS stream's runs between daily runs (seed 004 hot path), not by the daily job alone.
STREAM = "stream"

# A partition whose quarantined share of bronze rows exceeds this fails its blocking check.
QUARANTINE_LIMIT = 0.05
# ... with this confidence. A day is a sample: the generator's ~3% dirty customers give 6 bad rows
# of a 100-row day about one day in twelve, which is noise, not a broken feed. A blocking gate fails
# a day only when even the one-sided lower bound of its share (Wilson, continuity-corrected) is over
# the limit: a wholly bad day fails at any size (15 of 15), 6 of 100 does not, 11 of 100 does, and
# a 3%-dirty feed trips it on about one 100-row day in 5,000. The plain share is still reported,
# and warned about, by the non-blocking check.
GATE_CONFIDENCE = 0.99
# Facts pointing at the unknown member (-1), e.g. a product delivered days after its first sale:
# counted always; a WARN failure above the first share, a blocking ERROR above the second.
ORPHAN_WARN_SHARE = 0.05
ORPHAN_ERROR_SHARE = 0.10
# Seed 000 §8.2: data freshness SLA, in hours after the end of the newest partition's day.
FRESHNESS_WARN_HOURS = 24
FRESHNESS_FAIL_HOURS = 30

CONTRACT = "contract"  # pandera schema: columns, types, nullability, ranges, allowed values, keys
CONSERVATION = "bronze_rows_accounted_for"  # bronze = silver + quarantine + superseded
QUARANTINE_WITHIN_LIMIT = "quarantine_within_limit"
QUARANTINE_SHARE = "quarantine_share"
REVENUE_RECONCILES = "revenue_reconciles_with_fact_sales"
ORPHAN_KEYS = "orphan_dimension_keys"
REFUNDS_WITHIN_PAYMENTS = "refunds_within_payments"
SCD2_INTERVALS = "scd2_intervals_valid"
PARTITION_FRESHNESS = "newest_partition_fresh"
DROPS_LOADED = "daily_drop_loaded"
LOW_STOCK = "low_stock"
BEATS_SEASONAL_NAIVE = "beats_seasonal_naive"


@dataclass(frozen=True)
class Col:
    """One column: its Polars type and the rules the contract check enforces on it."""

    name: str
    dtype: pl.DataType | type[pl.DataType]
    doc: str = ""
    required: bool = False  # never null
    isin: tuple[str, ...] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    pattern: str | None = None  # a regular expression every value matches
    # The upstream columns this one is computed from, as "layer/table.column" (column lineage);
    # empty: the same-named column of the table's `derived_from` tables, where they have one.
    lineage: tuple[str, ...] = ()

    def rules(self) -> list[str]:
        """The value rules in words, as the Dagster UI shows them."""
        out = []
        if self.isin is not None:
            out.append("in {" + ", ".join(self.isin) + "}")
        out += [f"{op} {v}" for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le)) if v is not None]
        if self.pattern is not None:
            out.append(f"matches {self.pattern}")
        return out


@dataclass(frozen=True)
class Check:
    """An asset check. A blocking one fails with ERROR severity and stops the assets downstream in
    the run (some warn below a second limit, as their description says); the others report drift
    as WARN."""

    name: str
    blocking: bool
    description: str
    limits: Mapping[str, float] = field(default_factory=dict)
    # Evaluated on its own, from the stored table, instead of in the step that writes the table.
    standalone: bool = False

    @property
    def severity(self) -> str:
        return "ERROR" if self.blocking else "WARN"


@dataclass(frozen=True)
class Table:
    layer: str
    name: str
    kind: str
    grain: str  # "one row per ...": the catalog's first sentence about the table
    description: str
    columns: tuple[Col, ...]
    unique: tuple[str, ...] = ()  # the key: no two rows share these columns' values
    partition: str | None = None  # the Date column carrying the daily partition; None: rebuilt whole
    late: bool = False  # drops of later days can change a partition (returns, refunds)
    checks: tuple[Check, ...] = ()
    domain: str = ""
    classification: str = INTERNAL
    owner: str = ""  # default: the layer's owner
    cleaned_from: str | None = None  # silver: the bronze table it is cleaned from
    # Tables ("layer/table") whose same-named columns this table's columns come from, for column
    # lineage; silver defaults to its bronze table.
    derived_from: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.owner:
            object.__setattr__(self, "owner", OWNERS[self.layer])
        if not self.derived_from and self.cleaned_from:
            object.__setattr__(self, "derived_from", (f"{BRONZE}/{self.cleaned_from}",))
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.layer}/{self.name}: a column is declared twice")
        unknown = [c for c in (*self.unique, *([self.partition] if self.partition else [])) if c not in names]
        if unknown:
            raise ValueError(f"{self.layer}/{self.name}: key or partition column {unknown} is not a column")

    @property
    def key(self) -> tuple[str, str]:
        return (self.layer, self.name)

    @property
    def path(self) -> str:
        return f"{self.layer}/{self.name}"

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """Column name -> Polars type, in order: what the table's writer conforms to."""
        return {c.name: c.dtype for c in self.columns}

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Col:
        return next(c for c in self.columns if c.name == name)

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def has_check(self, name: str) -> bool:
        return any(c.name == name for c in self.checks)


def _contract() -> Check:
    return Check(CONTRACT, True, "Columns, types, nullability, ranges, allowed values and key uniqueness (pandera).")


def _silver_checks() -> tuple[Check, ...]:
    return (
        _contract(),
        Check(
            CONSERVATION, True,
            "For every drop date: bronze rows = silver + quarantined + superseded rows; rows waiting for a partition outside the run warn.",
        ),
        Check(
            QUARANTINE_WITHIN_LIMIT, True,
            f"Each drop date's quarantined share of its bronze rows <= {QUARANTINE_LIMIT:.0%} "
            f"(fails when the share is above it with {GATE_CONFIDENCE:.0%} confidence).",
            limits={"max_share": QUARANTINE_LIMIT, "confidence": GATE_CONFIDENCE},
        ),
        Check(
            QUARANTINE_SHARE, False, f"Reports each drop date's quarantined share (warns above {QUARANTINE_LIMIT:.0%}).",
            limits={"max_share": QUARANTINE_LIMIT},
        ),
    )


def _scd2(entity: str) -> Check:
    return Check(SCD2_INTERVALS, True, f"Per {entity}: no overlapping versions, exactly one current, unique keys.")


def _freshness(column: str) -> Check:
    return Check(
        PARTITION_FRESHNESS, False,
        f"The newest {column} partition ended at most {FRESHNESS_WARN_HOURS} h ago (WARN), {FRESHNESS_FAIL_HOURS} h (ERROR).",
        limits={"warn_after_hours": FRESHNESS_WARN_HOURS, "fail_after_hours": FRESHNESS_FAIL_HOURS},
        standalone=True,
    )


_TABLES: dict[tuple[str, str], Table] = {}


def _declare(table: Table) -> Table:
    if table.key in _TABLES:
        raise ValueError(f"{table.path} is declared twice")
    _TABLES[table.key] = table
    return table


def _carried(source: Table, *columns: str) -> tuple[Col, ...]:
    """Columns copied as they are from `source` (type and meaning); its rules stay with it."""
    return tuple(Col(c.name, c.dtype, c.doc) for c in (source.column(n) for n in columns))


# Bronze: every delivered column as text, then the lineage of the row (SPEC §3).
_BRONZE_LINEAGE = (
    Col("_source_file", pl.String, "landing path of the drop the row came from", required=True),
    Col("_row_number", pl.Int64, "1-based row within its file", required=True),
    Col("_ingested_at", TIMESTAMP, "when bronze loaded the file", required=True),
    Col("drop_date", pl.Date, "business date of the drop (its partition)", required=True),
)
_BRONZE_SOURCES = {  # source: (domain, classification, what its rows are)
    "customer": ("customer", PII, "new and changed customers"),
    "product": ("product", INTERNAL, "new and changed products"),
    "store": ("store", INTERNAL, "stores, delivered when they change"),
    "sales_returns": ("sales", FINANCIAL, "new order lines and updated rows of returned ones"),
    "payment_refund": ("payment", FINANCIAL, "new payments and updated rows of refunded ones"),
    "inventory": ("inventory", INTERNAL, "the day's stock snapshot"),
    "loyalty": ("loyalty", INTERNAL, "loyalty events"),
    "pos_events": ("pos", INTERNAL, "POS events of the streaming micro-batches (JSON Lines)"),
}
_CARD_NOTE = {
    "card_token": "keyed HMAC-SHA256 of the card number's digits (hex); the number itself never enters the lakehouse",
    "card_last4": "last four digits of the card number",
}


def _bronze(source: str) -> Table:
    domain, classification, rows = _BRONZE_SOURCES[source]
    delivered = POS_COLUMNS if source == "pos_events" else SOURCE_COLUMNS[source]
    note = " Card numbers are replaced by a keyed token and the last four digits." if "card_number" in delivered else ""
    daily = source in DAILY_SOURCES
    return Table(
        BRONZE, source, RAW,
        grain=f"one row per data row of each `{source}` drop of the drop date",
        description=f"Raw `{source}` drops as delivered ({rows}): every column as text, plus source file, row number and ingestion time.{note}",
        columns=(*(Col(c, pl.String, _CARD_NOTE.get(c, "")) for c in bronze_columns(delivered)), *_BRONZE_LINEAGE),
        unique=("_source_file", "_row_number"),
        partition="drop_date",
        checks=(Check(
            DROPS_LOADED, True,
            "Every day has at least one drop of this daily source that loads; a missing or rejected drop fails its day, "
            "which keeps its previous version.",
        ),) if daily else (),
        domain=domain,
        classification=classification,
    )


for _source in ALL_SOURCES:
    _declare(_bronze(_source))

_declare(Table(
    BRONZE, "rejected_files", REJECTED,
    grain="one row per file that could not be loaded and day",
    description=(
        "Files of every source that bronze skipped (wrong header or delimiter, not UTF-8, truncated, a stray name), "
        "with the reason; the rest of the partition loads. A stray file belongs to no day, so it is listed on every day that runs."
    ),
    columns=(
        Col("source", pl.String, required=True),
        Col("_source_file", pl.String, "landing path of the rejected file", required=True),
        Col("reason", pl.String, "what is wrong and where; never quotes file content", required=True),
        Col("_ingested_at", TIMESTAMP, required=True),
        Col("drop_date", pl.Date, "business date of the drop (its partition)", required=True),
    ),
    unique=("_source_file", "drop_date"),
    partition="drop_date",
    domain="ops",
))

# Silver: lineage of the winning (or rejected) bronze row: file, 1-based row in it, its drop's date.
_LINEAGE = (
    Col("_source_file", pl.String, "landing path of the drop the row came from", required=True),
    Col("_row_number", pl.Int64, "1-based row within its file", required=True),
    Col("drop_date", pl.Date, "business date of the drop the row came from", required=True),
)

_customer = _declare(Table(
    SILVER, "customer", CLEAN,
    grain="one row per customer_id, its latest valid version",
    description="Cleaned and validated customers; an email held by two customer_ids stays with the earlier-created one.",
    columns=(
        Col("customer_id", pl.String, "natural key", required=True),
        Col("name", pl.String, "trimmed, title-cased"),
        Col("email", pl.String, "trimmed, lower-cased", required=True, pattern=EMAIL_PATTERN),
        Col("phone", pl.String, "digits and a leading +"),
        Col("gender", pl.String, "null when not an allowed value", isin=GENDERS),
        Col("age_group", pl.String, "null when not an allowed value", isin=AGE_GROUPS),
        Col("city", pl.String),
        Col("state", pl.String),
        Col("postal_code", pl.String, "upper-cased, [0-9A-Z-] only"),
        Col("country", pl.String),
        Col("customer_segment", pl.String),
        Col("created_at", TIMESTAMP, required=True),
        Col("updated_at", TIMESTAMP, required=True),
        Col("data_quality_score", pl.Float64, "share of the checks age_group, gender, phone, postal_code that pass", ge=0.0, le=1.0),
        *_LINEAGE,
    ),
    unique=("customer_id",),
    checks=_silver_checks(),
    domain="customer", classification=PII, cleaned_from="customer",
))

_product = _declare(Table(
    SILVER, "product", CLEAN,
    grain="one row per product_id, its latest valid version",
    description="Cleaned and validated products: names trimmed, prices as money.",
    columns=(
        Col("product_id", pl.String, "natural key", required=True),
        Col("sku", pl.String),
        Col("name", pl.String, "trimmed"),
        Col("category", pl.String),
        Col("subcategory", pl.String),
        Col("brand", pl.String),
        Col("supplier_id", pl.String),
        Col("cost", MONEY, required=True, ge=0),
        Col("list_price", MONEY, required=True, ge=0),
        Col("updated_at", TIMESTAMP),
        *_LINEAGE,
    ),
    unique=("product_id",),
    checks=_silver_checks(),
    domain="product", cleaned_from="product",
))

_store = _declare(Table(
    SILVER, "store", CLEAN,
    grain="one row per store_id, its latest valid version",
    description="Cleaned and validated stores.",
    columns=(
        Col("store_id", pl.String, "natural key", required=True),
        Col("name", pl.String),
        Col("region", pl.String),
        Col("format", pl.String),
        Col("square_footage", pl.Int64, ge=0),
        Col("opened_date", pl.Date),
        *_LINEAGE,
    ),
    unique=("store_id",),
    checks=_silver_checks(),
    domain="store", cleaned_from="store",
))

_sales = _declare(Table(
    SILVER, "sales", CLEAN,
    grain="one row per (order_id, line_number), its latest valid version",
    description="Cleaned and validated order lines with their returns; a return delivered later updates its order date's partition.",
    columns=(
        Col("order_id", pl.String, required=True),
        Col("line_number", pl.Int32, required=True),
        Col("customer_id", pl.String, required=True),
        Col("product_id", pl.String, required=True),
        Col("store_id", pl.String),
        Col("order_ts", TIMESTAMP, required=True),
        Col("order_date", pl.Date, "date of order_ts (the partition)", required=True),
        Col("delivery_date", pl.Date),
        Col("quantity", pl.Int32, required=True, gt=0),
        Col("unit_price", MONEY, required=True, ge=0),
        Col("discount_amount", MONEY, "an empty discount means 0", required=True, ge=0),
        Col("tax_amount", MONEY, "an empty tax means 0", required=True, ge=0),
        Col("sales_total", MONEY, "quantity x unit_price - discount_amount + tax_amount, rounded half-even", required=True),
        Col("sales_channel", pl.String, "normalized", required=True, isin=SALES_CHANNELS),
        Col("order_status", pl.String),
        Col("is_returned", pl.Boolean, required=True),
        Col("return_date", pl.Date, "on or after order_date"),
        Col("return_reason", pl.String),
        Col("return_quantity", pl.Int32, "at most quantity", gt=0),
        Col("return_amount", MONEY, "at most sales_total", ge=0),
        *_LINEAGE,
    ),
    unique=("order_id", "line_number"),
    partition="order_date", late=True,
    checks=_silver_checks(),
    domain="sales", classification=FINANCIAL, cleaned_from="sales_returns",
))

_payment = _declare(Table(
    SILVER, "payment", CLEAN,
    grain="one row per payment_id, its latest valid version",
    description="Cleaned and validated payments with their refunds; a refund delivered later updates its transaction date's partition.",
    columns=(
        Col("payment_id", pl.String, required=True),
        Col("order_id", pl.String, required=True),
        Col("payment_type", pl.String),
        Col("card_brand", pl.String),
        Col("card_token", pl.String, _CARD_NOTE["card_token"]),
        Col("card_last4", pl.String, _CARD_NOTE["card_last4"]),
        Col("amount", MONEY, required=True, ge=0),
        Col("payment_status", pl.String),
        Col("transaction_ts", TIMESTAMP, required=True),
        Col("transaction_date", pl.Date, "date of transaction_ts (the partition)", required=True),
        Col("is_refunded", pl.Boolean, required=True),
        Col("refund_amount", MONEY, "at most amount", ge=0),
        Col("refund_reason", pl.String),
        Col("refund_status", pl.String),
        Col("refund_date", pl.Date),
        *_LINEAGE,
    ),
    unique=("payment_id",),
    partition="transaction_date", late=True,
    checks=_silver_checks(),
    domain="payment", classification=FINANCIAL, cleaned_from="payment_refund",
))

_inventory = _declare(Table(
    SILVER, "inventory", CLEAN,
    grain="one row per (snapshot_date, store_id, product_id)",
    description="Cleaned and validated stock snapshots: the stock at the close of snapshot_date.",
    columns=(
        Col("snapshot_date", pl.Date, "the drop's date (the partition)", required=True),
        Col("store_id", pl.String, required=True),
        Col("product_id", pl.String, required=True),
        Col("quantity_on_hand", pl.Int64, required=True, ge=0),
        Col("reorder_point", pl.Int64, required=True, ge=0),
        *_LINEAGE,
    ),
    unique=("snapshot_date", "store_id", "product_id"),
    partition="snapshot_date",
    checks=_silver_checks(),
    domain="inventory", cleaned_from="inventory",
))

_loyalty = _declare(Table(
    SILVER, "loyalty", CLEAN,
    grain="one row per event_id",
    description="Cleaned and validated loyalty events; empty points mean 0.",
    columns=(
        Col("event_id", pl.String, required=True),
        Col("customer_id", pl.String, required=True),
        Col("event_ts", TIMESTAMP, required=True),
        Col("event_type", pl.String),
        Col("points_earned", pl.Int64, ge=0),
        Col("points_redeemed", pl.Int64, ge=0),
        *_LINEAGE,
    ),
    unique=("event_id",),
    partition="drop_date",
    checks=_silver_checks(),
    domain="loyalty", cleaned_from="loyalty",
))


def _quarantine(clean: Table) -> Table:
    """The rejected bronze rows of a silver table: original text values, the rules they broke."""
    source = _TABLES[(BRONZE, clean.cleaned_from)]
    delivered = tuple(Col(c.name, c.dtype, c.doc) for c in source.columns if not c.name.startswith("_") and c.name != "drop_date")
    return Table(
        SILVER, f"{clean.name}_quarantine", QUARANTINE,
        grain=f"one row per rejected `{clean.cleaned_from}` bronze row",
        description=f"Every rejected `{clean.cleaned_from}` row: original values, reject_reasons, source file and row.",
        columns=(*delivered, Col("reject_reasons", pl.List(pl.String), "names of every rule the row broke", required=True), *_LINEAGE),
        unique=("_source_file", "_row_number"),
        # Rejected rows have no trustworthy business date: they stay with their drop's date.
        partition="drop_date" if clean.partition else None,
        domain=clean.domain, classification=clean.classification, cleaned_from=clean.cleaned_from,
    )


def _history(clean: Table) -> Table:
    return replace(
        clean,
        name=f"{clean.name}_history", kind=HISTORY,
        grain=f"one row per valid version of each `{clean.cleaned_from}` record, in delivery order",
        description=f"Every valid version of each `{clean.cleaned_from}` record (feeds SCD2 in gold).",
        unique=("_source_file", "_row_number"), partition=None, late=False, checks=(),
    )


for _clean in (_customer, _product, _store, _sales, _payment, _inventory, _loyalty):
    _declare(_quarantine(_clean))
_declare(_history(_customer))
_declare(_history(_product))

# Gold: the star schema (seed 000 §1.3; seed 004 data model), reports and seed 004 use cases.
_VALIDITY = (
    Col("valid_from", TIMESTAMP, "when this version took effect", required=True),
    Col("valid_to", TIMESTAMP, "when the next version took effect; null while current"),
    Col("is_current", pl.Boolean, required=True),
)
_UNKNOWN = "-1 is the unknown member, for ids the dimension does not (yet) hold"

_declare(Table(
    GOLD, "dim_customer", DIMENSION,
    grain="one row per customer version (SCD Type 2), plus the unknown member -1",
    description="Customers as SCD Type 2: the tracked attributes of each version and its validity interval.",
    columns=(
        Col("customer_key", pl.Int64, f"surrogate key of the version; {_UNKNOWN}", required=True),
        Col("customer_id", pl.String, "natural key", required=True),
        *_carried(_customer, "name", "email", "phone", "gender", "age_group", "city", "state", "postal_code", "country",
                  "customer_segment", "data_quality_score"),
        *_VALIDITY,
    ),
    unique=("customer_key",),
    checks=(_contract(), _scd2("customer")),
    domain="customer", classification=PII,
    derived_from=("silver/customer_history",),
))

_declare(Table(
    GOLD, "dim_product", DIMENSION,
    grain="one row per product version (SCD Type 2), plus the unknown member -1",
    description="Products as SCD Type 2: names and prices of each version and its validity interval.",
    columns=(
        Col("product_key", pl.Int64, f"surrogate key of the version; {_UNKNOWN}", required=True),
        Col("product_id", pl.String, "natural key", required=True),
        *_carried(_product, "sku", "name", "category", "subcategory", "brand", "supplier_id", "cost", "list_price"),
        *_VALIDITY,
    ),
    unique=("product_key",),
    checks=(_contract(), _scd2("product")),
    domain="product",
    derived_from=("silver/product_history",),
))

_declare(Table(
    GOLD, "dim_store", DIMENSION,
    grain="one row per store_id (current attributes), plus the unknown member -1",
    description="Stores with their current attributes.",
    columns=(
        Col("store_key", pl.Int64, f"surrogate key; {_UNKNOWN}", required=True),
        Col("store_id", pl.String, "natural key", required=True),
        *_carried(_store, "name", "region", "format", "square_footage", "opened_date"),
    ),
    unique=("store_key",),
    checks=(_contract(),),
    domain="store",
    derived_from=("silver/store",),
))

# Int32 parts are what Spark's date functions return, so both engines write the same Delta schema.
_declare(Table(
    GOLD, "dim_date", DIMENSION,
    grain="one row per date from the first partition, for three years",
    description="The calendar.",
    columns=(
        Col("date_key", pl.Int32, "yyyymmdd", required=True),
        Col("date", pl.Date, required=True),
        Col("year", pl.Int32),
        Col("quarter", pl.Int32),
        Col("month", pl.Int32),
        Col("week", pl.Int32, "ISO week"),
        Col("day_of_week", pl.Int32, "1 = Monday"),
        Col("is_weekend", pl.Boolean),
    ),
    unique=("date",),
    checks=(_contract(),),
    domain="calendar",
))

_declare(Table(
    GOLD, "fact_sales", FACT,
    grain="one row per order line",
    description="Order lines keyed to the customer and product versions valid at order time; returns reach the original order date.",
    columns=(
        Col("sales_id", pl.Int64, "surrogate key of the order line", required=True),
        Col("order_id", pl.String, required=True),
        Col("line_number", pl.Int32, required=True),
        Col("customer_id", pl.String),
        Col("customer_key", pl.Int64, "dim_customer version valid at order_ts; -1 if unknown", required=True,
            lineage=("gold/dim_customer.customer_key", "silver/sales.customer_id", "silver/sales.order_ts")),
        Col("product_id", pl.String),
        Col("product_key", pl.Int64, "dim_product version valid at order_ts; -1 if unknown", required=True,
            lineage=("gold/dim_product.product_key", "silver/sales.product_id", "silver/sales.order_ts")),
        Col("store_id", pl.String),
        Col("order_date", pl.Date, "the partition", required=True),
        Col("delivery_date", pl.Date),
        Col("quantity", pl.Int32, required=True, gt=0),
        Col("unit_price", MONEY, required=True, ge=0),
        Col("discount_amount", MONEY),
        Col("tax_amount", MONEY),
        Col("sales_total", MONEY, "quantity x unit_price - discount_amount + tax_amount", required=True),
        Col("sales_channel", pl.String, required=True, isin=SALES_CHANNELS),
        Col("order_status", pl.String),
        Col("is_returned", pl.Boolean),
        Col("return_date", pl.Date),
        Col("return_reason", pl.String),
        Col("return_quantity", pl.Int32),
        Col("return_amount", MONEY),
        Col("load_timestamp", TIMESTAMP, "when the run wrote the row", required=True),
    ),
    unique=("sales_id",),
    partition="order_date", late=True,
    checks=(
        _contract(),
        # Blocking, but only an ERROR-severity result blocks: below the error share it warns.
        Check(
            ORPHAN_KEYS, True,
            f"Facts on the unknown member (-1) per order date: warns above {ORPHAN_WARN_SHARE:.0%}, blocks above "
            f"{ORPHAN_ERROR_SHARE:.0%} (with {GATE_CONFIDENCE:.0%} confidence).",
            limits={"warn_above_share": ORPHAN_WARN_SHARE, "error_above_share": ORPHAN_ERROR_SHARE, "confidence": GATE_CONFIDENCE},
        ),
        _freshness("order_date"),
    ),
    domain="sales", classification=FINANCIAL,
    derived_from=("silver/sales",),
))

_declare(Table(
    GOLD, "fact_payment", FACT,
    grain="one row per payment, refunds folded in",
    description="Payments by transaction date, card numbers only as tokens; refunds reach the original transaction date.",
    columns=(
        Col("payment_id", pl.String, "natural key", required=True),
        Col("order_id", pl.String, required=True),
        Col("payment_type", pl.String),
        Col("card_brand", pl.String),
        Col("card_token", pl.String, _CARD_NOTE["card_token"]),
        Col("card_last4", pl.String, _CARD_NOTE["card_last4"]),
        Col("amount", MONEY, required=True, ge=0),
        Col("payment_status", pl.String),
        Col("transaction_date", pl.Date, "the partition", required=True),
        Col("is_refunded", pl.Boolean),
        Col("refund_amount", MONEY, ge=0),
        Col("refund_reason", pl.String),
        Col("refund_status", pl.String),
        Col("refund_date", pl.Date),
        Col("load_timestamp", TIMESTAMP, "when the run wrote the row"),
    ),
    unique=("payment_id",),
    partition="transaction_date", late=True,
    checks=(_contract(), Check(REFUNDS_WITHIN_PAYMENTS, True, "No refund exceeds its payment."), _freshness("transaction_date")),
    domain="payment", classification=FINANCIAL,
    derived_from=("silver/payment",),
))

_declare(Table(
    GOLD, "agg_daily_sales", AGGREGATE,
    grain="one row per sales date and channel",
    description="Daily revenue, quantity, orders, lines, customers, returns and average order value (seed 000 §1.3).",
    columns=(
        Col("sales_date", pl.Date, "the partition", required=True, lineage=("gold/fact_sales.order_date",)),
        Col("sales_channel", pl.String, required=True, isin=SALES_CHANNELS, lineage=("gold/fact_sales.sales_channel",)),
        Col("total_revenue", MONEY, "sum of sales_total", required=True, lineage=("gold/fact_sales.sales_total",)),
        Col("total_quantity", pl.Int64, "sum of quantity", lineage=("gold/fact_sales.quantity",)),
        Col("total_orders", pl.Int64, "count of distinct order_id", required=True, lineage=("gold/fact_sales.order_id",)),
        Col("total_lines", pl.Int64, "count of order lines", required=True, gt=0, lineage=("gold/fact_sales.sales_id",)),
        Col("unique_customers", pl.Int64, "count of distinct customer_id", lineage=("gold/fact_sales.customer_id",)),
        Col("return_count", pl.Int64, "count of returned lines", lineage=("gold/fact_sales.is_returned",)),
        Col("avg_order_value", MONEY, "total_revenue / total_orders, rounded half-even", lineage=("gold/fact_sales.sales_total", "gold/fact_sales.order_id")),
    ),
    unique=("sales_date", "sales_channel"),
    partition="sales_date", late=True,
    checks=(
        _contract(),
        Check(REVENUE_RECONCILES, True, "Sum of fact_sales.sales_total per date and channel = total_revenue, to the cent."),
        _freshness("sales_date"),
    ),
    domain="sales", classification=FINANCIAL,
))

_declare(Table(
    GOLD, "sales_performance", REPORT,
    grain="one row per sales date and channel",
    description="Seed 000 §9.1: orders, revenue, average line value, returns and return rate.",
    columns=(
        Col("sales_date", pl.Date, "the partition", required=True, lineage=("gold/fact_sales.order_date",)),
        Col("sales_channel", pl.String, required=True, lineage=("gold/fact_sales.sales_channel",)),
        Col("num_orders", pl.Int64, lineage=("gold/fact_sales.order_id",)),
        Col("num_lines", pl.Int64, lineage=("gold/fact_sales.sales_id",)),
        Col("total_revenue", MONEY, lineage=("gold/fact_sales.sales_total",)),
        Col("avg_line_value", MONEY, lineage=("gold/fact_sales.sales_total", "gold/fact_sales.sales_id")),
        Col("returns", pl.Int64, lineage=("gold/fact_sales.is_returned",)),
        Col("return_rate", PERCENT, "returned lines per 100 lines", lineage=("gold/fact_sales.is_returned", "gold/fact_sales.sales_id")),
    ),
    unique=("sales_date", "sales_channel"),
    partition="sales_date", late=True,
    checks=(_contract(),),
    domain="sales", classification=FINANCIAL,
))

_declare(Table(
    GOLD, "customer_lifetime_value", REPORT,
    grain="one row per customer with sales",
    description="Seed 000 §9.2: orders, lifetime value, first and last purchase, recency, average order value.",
    columns=(
        Col("customer_id", pl.String, required=True),
        Col("name", pl.String),
        Col("customer_segment", pl.String),
        Col("total_orders", pl.Int64, lineage=("gold/fact_sales.order_id",)),
        Col("lifetime_value", MONEY, required=True, lineage=("gold/fact_sales.sales_total",)),
        Col("first_purchase_date", pl.Date, lineage=("gold/fact_sales.order_date",)),
        Col("last_purchase_date", pl.Date, lineage=("gold/fact_sales.order_date",)),
        Col("days_since_purchase", pl.Int64, lineage=("gold/fact_sales.order_date",)),
        Col("avg_order_value", MONEY, lineage=("gold/fact_sales.sales_total", "gold/fact_sales.order_id")),
    ),
    unique=("customer_id",),
    checks=(_contract(),),
    domain="customer", classification=PII,
    derived_from=("gold/dim_customer",),
))

_declare(Table(
    GOLD, "product_return_analysis", REPORT,
    grain="one row per product with sales",
    description="Seed 000 §9.3: units sold and returned, revenue, refunds and their rates.",
    columns=(
        Col("product_id", pl.String, required=True),
        Col("name", pl.String),
        Col("category", pl.String),
        Col("total_sales", pl.Int64),
        Col("total_units_sold", pl.Int64, lineage=("gold/fact_sales.quantity",)),
        Col("units_returned", pl.Int64, lineage=("gold/fact_sales.return_quantity",)),
        Col("return_rate_pct", PERCENT, lineage=("gold/fact_sales.return_quantity", "gold/fact_sales.quantity")),
        Col("total_revenue", MONEY, lineage=("gold/fact_sales.sales_total",)),
        Col("total_refunds", MONEY, lineage=("gold/fact_sales.return_amount",)),
        Col("refund_rate_pct", PERCENT, lineage=("gold/fact_sales.return_amount", "gold/fact_sales.sales_total")),
    ),
    unique=("product_id",),
    checks=(_contract(),),
    domain="product", classification=FINANCIAL,
    derived_from=("gold/dim_product",),
))

_declare(Table(
    GOLD, "customer_360", REPORT,
    grain="one row per current customer",
    description="Seed 004 §2: orders, channels, categories, loyalty points and RFM segment.",
    columns=(
        Col("customer_id", pl.String, required=True),
        Col("email", pl.String),
        Col("registration_date", pl.Date, "date of the customer's first version"),
        Col("segment", pl.String, "customer_segment of the current version"),
        Col("total_transactions", pl.Int64, "distinct orders", required=True),
        Col("lifetime_value", MONEY),
        Col("last_purchase_date", pl.Date),
        Col("days_since_purchase", pl.Int64, "measured against the newest order date, not the wall clock"),
        Col("online_transactions", pl.Int64),
        Col("store_transactions", pl.Int64),
        Col("mobile_transactions", pl.Int64),
        Col("preferred_categories", pl.String, "comma-separated, sorted"),
        Col("total_points_earned", pl.Int64, ge=0),
        Col("total_points_redeemed", pl.Int64),
        Col("rfm_segment", pl.String, "seed 004 §2 rules", required=True, isin=RFM_SEGMENTS),
    ),
    unique=("customer_id",),
    checks=(_contract(),),
    domain="customer", classification=PII,
))

BASKET_LEVELS = ("product", "category")
FORECAST_LEVELS = ("product_store", "category_store")
PRICE_ACTIONS = ("decrease", "increase", "keep", "margin_floor")
CHURN_TIERS = ("High", "Medium", "Low")
_BASKET_LEVEL = Col("level", pl.String, "product, or category (items are categories)", required=True, isin=BASKET_LEVELS)

_declare(Table(
    GOLD, "frequent_itemsets", ANALYTICS,
    grain="one row per level and frequent itemset",
    description="Seed 004 §4: sets of up to three products (or categories) bought together in multi-item orders, "
                "with support of at least min_support (1% by default), counted exactly.",
    columns=(
        _BASKET_LEVEL,
        Col("items", pl.List(pl.String), "the itemset, sorted", required=True),
        Col("size", pl.Int64, required=True, ge=1),
        Col("basket_count", pl.Int64, "multi-item orders holding every item", required=True, ge=1),
        Col("baskets", pl.Int64, "multi-item orders at this level", required=True, ge=1),
        Col("support", pl.Float64, "basket_count / baskets", required=True, gt=0, le=1),
    ),
    checks=(_contract(),),
    domain="sales",
))

_declare(Table(
    GOLD, "association_rules", ANALYTICS,
    grain="one row per level and rule antecedent → consequent",
    description="Seed 004 §4: rules from the frequent itemsets with confidence of at least min_confidence (30% by default); "
                "lift above 1 means bought together more often than chance.",
    columns=(
        _BASKET_LEVEL,
        Col("antecedent", pl.List(pl.String), required=True),
        Col("consequent", pl.List(pl.String), required=True),
        Col("antecedent_support", pl.Float64, required=True, gt=0, le=1),
        Col("consequent_support", pl.Float64, required=True, gt=0, le=1),
        Col("support", pl.Float64, "support of antecedent and consequent together", required=True, gt=0, le=1),
        Col("basket_count", pl.Int64, required=True, ge=1),
        Col("confidence", pl.Float64, "support / antecedent_support", required=True, gt=0, le=1),
        Col("lift", pl.Float64, "confidence / consequent_support", required=True, gt=0),
    ),
    checks=(_contract(),),
    domain="sales",
))

_declare(Table(
    GOLD, "demand_forecast", ANALYTICS,
    grain="one row per level, series and forecast date",
    description="Seed 004 §3: units per day for the 30 days after the newest sales date, per product and store where the "
                "product sells most days there, and per category and store for every pair; a pooled linear model on lags "
                "1/7/14/28, the 7-day rolling mean and the day of week.",
    columns=(
        Col("level", pl.String, required=True, isin=FORECAST_LEVELS),
        Col("store_id", pl.String, required=True),
        Col("category", pl.String, required=True),
        Col("product_id", pl.String, "null at category_store level"),
        Col("forecast_date", pl.Date, required=True),
        Col("horizon_day", pl.Int64, "1 = the day after as_of_date", required=True, ge=1),
        Col("forecast_units", pl.Float64, required=True, ge=0),
        Col("as_of_date", pl.Date, "the newest sales date the model saw", required=True),
    ),
    unique=("level", "store_id", "category", "product_id", "forecast_date"),
    checks=(_contract(), Check(BEATS_SEASONAL_NAIVE, False,
                              "On the held-out window the model's MASE is below the seasonal-naive forecast's, at each level (WARN).")),
    domain="sales",
))

_declare(Table(
    GOLD, "price_elasticity", ANALYTICS,
    grain="one row per product with enough price changes",
    description="Seed 004 §5: price elasticity of demand from price changes (at least 10 changes of more than 1%, "
                "undiscounted lines only) and the seed's recommended price: elasticity below -1.5 lowers the price 5%, "
                "above -0.5 raises it 5%, never below cost + 10%.",
    columns=(
        Col("product_id", pl.String, required=True),
        Col("category", pl.String),
        Col("price_change_events", pl.Int64, "price changes of more than 1%", required=True, ge=0),
        Col("price_elasticity", pl.Float64, "log-log slope of daily demand share on price", required=True),
        Col("elasticity_stderr", pl.Float64, "standard error of that slope"),
        Col("current_price", MONEY, required=True, ge=0),
        Col("cost", MONEY, ge=0),
        Col("recommended_price", MONEY, required=True, ge=0),
        Col("price_action", pl.String, "what the rule did; margin_floor: the rule's price was below cost + 10%",
            required=True, isin=PRICE_ACTIONS),
        Col("avg_daily_quantity", pl.Float64, "units a day over the last 30 days", required=True, ge=0),
        Col("projected_annual_margin", MONEY, "(recommended_price - cost) x avg_daily_quantity x 365"),
    ),
    unique=("product_id",),
    checks=(_contract(),),
    domain="product", classification=FINANCIAL,
))

_declare(Table(
    GOLD, "customer_churn_risk", ANALYTICS,
    grain="one row per current customer",
    description="Seed 000 phase 6: the chance a customer buying at their own pace would have bought again by now "
                "(1 - exp(-rate x days since purchase), rate smoothed toward the population's), and its tier.",
    columns=(
        Col("customer_id", pl.String, required=True),
        Col("total_orders", pl.Int64, required=True, ge=0),
        Col("lifetime_value", MONEY),
        Col("first_purchase_date", pl.Date),
        Col("last_purchase_date", pl.Date),
        Col("days_since_purchase", pl.Int64, "since the last purchase (or registration), against the newest order date", required=True, ge=0),
        Col("orders_per_30_days", pl.Float64, "the smoothed purchase rate", required=True, ge=0),
        Col("churn_score", pl.Float64, "0 = bought as recently as expected, 1 = silent far longer than their pace", required=True, ge=0, le=1),
        Col("risk_tier", pl.String, "High >= 0.8, Medium >= 0.5, else Low", required=True, isin=CHURN_TIERS),
    ),
    unique=("customer_id",),
    checks=(_contract(),),
    domain="customer",
))

_declare(Table(
    GOLD, "pos_ledger", STREAM,
    grain="one row per POS event_id applied by the stream",
    description="Every POS event merged by the pos_stream sensor's runs, each event_id once (a replayed batch inserts nothing).",
    columns=(
        Col("event_id", pl.String, required=True),
        Col("event_ts", TIMESTAMP, required=True),
        Col("store_id", pl.String, required=True),
        Col("product_id", pl.String, required=True),
        Col("quantity", pl.Int64, "positive = sold, negative = returned at the till", required=True),
        Col("batch", pl.String, "the micro-batch that delivered the event (pos_events/<file>)", required=True),
    ),
    unique=("event_id",),
    # No asset step writes the ledger (the stream's op merges into it), so its contract reads the table.
    checks=(replace(_contract(), standalone=True),),
    domain="pos",
))

_declare(Table(
    GOLD, "inventory_positions", STREAM,
    grain="one row per store and product with a snapshot",
    description="Stock now: the latest snapshot minus the POS quantities of events on later dates, each event_id counted once (seed 004 §1).",
    columns=(
        Col("store_id", pl.String, required=True),
        Col("product_id", pl.String, required=True),
        Col("snapshot_date", pl.Date, "date of the latest snapshot", required=True),
        Col("snapshot_quantity", pl.Int64, "stock at the close of snapshot_date", required=True, ge=0),
        Col("pos_quantity_since", pl.Int64, "net POS quantity of events after snapshot_date", required=True),
        Col("quantity_on_hand", pl.Int64, "snapshot_quantity - pos_quantity_since; negative when the till sold unrecorded stock", required=True),
        Col("reorder_point", pl.Int64, required=True, ge=0),
        Col("last_updated", TIMESTAMP, "close of snapshot_date or the newest event applied, whichever is later", required=True),
        Col("is_below_reorder_point", pl.Boolean, required=True),
    ),
    unique=("store_id", "product_id"),
    checks=(_contract(), Check(LOW_STOCK, False, "Store/product pairs below their reorder point (WARN).")),
    domain="inventory",
))

_declare(Table(
    GOLD, "pos_sales_5min", STREAM,
    grain="one row per 5-minute window, store and product with POS events",
    description="Units sold and returned per 5-minute tumbling window, from the POS ledger (seed 004 §1).",
    columns=(
        Col("window_start", TIMESTAMP, required=True),
        Col("window_end", TIMESTAMP, "window_start + 5 minutes", required=True),
        Col("store_id", pl.String, required=True),
        Col("product_id", pl.String, required=True),
        Col("units_sold", pl.Int64, required=True, ge=0),
        Col("units_returned", pl.Int64, required=True, ge=0),
        Col("net_units", pl.Int64, "units_sold - units_returned", required=True),
    ),
    unique=("window_start", "store_id", "product_id"),
    checks=(_contract(),),
    domain="pos",
))

_declare(Table(
    OPS, "audit_log", AUDIT,
    grain="one row per table write, and per write that failed",
    description=(
        "The audit log (seed 000 §2.2): run id, layer, table, partitions, record count, status and time of every table "
        "written, and of every write that failed, with its error."
    ),
    columns=(
        Col("run_id", pl.String, "Dagster run id", required=True),
        Col("layer", pl.String, required=True),
        Col("table", pl.String, required=True),
        Col("partitions", pl.String, "first..last date written, or all", required=True),
        Col("record_count", pl.Int64, "rows written (0 when the write failed)", required=True),
        Col("status", pl.String, "SUCCESS, PARTIAL (some days withheld by a gate), WITHHELD or FAILED", required=True,
            isin=("SUCCESS", "PARTIAL", "WITHHELD", "FAILED")),
        Col("timestamp", TIMESTAMP, required=True),
        Col("error_class", pl.String, "the exception's class, for a FAILED write"),
        Col("error_message", pl.String, "what went wrong, credentials and card numbers masked, for a FAILED write"),
    ),
    domain="ops",
))

TABLES: Mapping[tuple[str, str], Table] = MappingProxyType(_TABLES)


def _key(parts: tuple) -> tuple[str, str]:
    """A key from ("gold", "fact_sales"), (("gold", "fact_sales"),), ("gold/fact_sales",) or an AssetKey."""
    if len(parts) == 1:
        (part,) = parts
        path = getattr(part, "path", part)
        parts = tuple(path.split("/")) if isinstance(path, str) else tuple(path)
    if len(parts) != 2:
        raise KeyError(f"a table key is [layer, table], got {parts!r}")
    return (parts[0], parts[1])


def table(*key: str | Sequence[str]) -> Table:
    """The entry of one table: `table("gold", "fact_sales")`, `table("gold/fact_sales")`, or by asset key."""
    k = _key(key)
    if k not in _TABLES:
        raise KeyError(f"{'/'.join(k)} is not in the catalog")
    return _TABLES[k]


def schema(*key: str | Sequence[str]) -> dict[str, pl.DataType]:
    """Column name -> Polars type of one table, in order (a fresh dict)."""
    return table(*key).schema


def tables(
    layer: str | None = None,
    kind: str | Sequence[str] | None = None,
    *,
    exclude: str | Sequence[str] = (),
    check: str | None = None,
) -> tuple[Table, ...]:
    """Tables in declaration order: optionally of one layer, of some kinds and not of others, or
    carrying a check."""
    kinds = (kind,) if isinstance(kind, str) else kind
    excluded = (exclude,) if isinstance(exclude, str) else exclude
    return tuple(
        t for t in _TABLES.values()
        if (layer is None or t.layer == layer) and (kinds is None or t.kind in kinds) and t.kind not in excluded
        and (check is None or t.has_check(check))
    )


def names(layer: str, kind: str | Sequence[str] | None = None, *, exclude: str | Sequence[str] = ()) -> list[str]:
    """Table names of one layer, e.g. `names("silver", CLEAN)`, `names("gold", exclude=STREAM)`."""
    return [t.name for t in tables(layer, kind, exclude=exclude)]


# The silver schemas as plain dicts, for the transforms that conform to them.
LINEAGE = {c.name: c.dtype for c in _LINEAGE}
QUARANTINE_EXTRA = {"reject_reasons": pl.List(pl.String), **LINEAGE}
