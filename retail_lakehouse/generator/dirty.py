"""Defects applied to clean drop rows, at the rates of `DIRTY_RATES`.

Each function takes a frame of clean text columns (plus helper columns starting with "_"), draws
one uniform per row and defect from its own stream, and returns the dirty rows together with the
number of rows that received each defect (before duplication). Defects that touch the same field
are drawn as disjoint slices of one uniform, so no defect ever masks another and each one stays
countable in the delivered files.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from retail_lakehouse.generator._util import money
from retail_lakehouse.generator.reference import INVALID_AGE_GROUPS, INVALID_GENDERS, SOURCE_COLUMNS


def _choose(variant: pl.Expr, options: list[pl.Expr]) -> pl.Expr:
    k = len(options)
    expr = options[-1]
    for i in range(k - 2, -1, -1):
        expr = pl.when(variant % k == i).then(options[i]).otherwise(expr)
    return expr


def _apply(frame: pl.DataFrame, masks: dict[str, np.ndarray], changes: dict[str, pl.Expr]) -> pl.DataFrame:
    """Add the masks as `_m_<name>` columns, then evaluate `changes` (expressions over them)."""
    frame = frame.with_columns(pl.Series(f"_m_{k}", v, dtype=pl.Boolean) for k, v in masks.items())
    return frame.with_columns(**changes)


def _masked(name: str, dirty: pl.Expr, column: str) -> pl.Expr:
    return pl.when(pl.col(f"_m_{name}")).then(dirty).otherwise(pl.col(column))


def _variants(rng: np.random.Generator, n: int, k: int) -> list[pl.Series]:
    draws = rng.integers(0, 1 << 30, (k, n))
    return [pl.Series(f"_v{i}", draws[i]) for i in range(k)]


def malformed_timestamp(text: pl.Expr, variant: pl.Expr) -> pl.Expr:
    """Unparseable variants of a 'yyyy-MM-dd HH:mm:ss' value, none of which any lenient parser reads."""
    year, month, day = text.str.slice(0, 4), text.str.slice(5, 2), text.str.slice(8, 2)
    return _choose(
        variant,
        [
            pl.concat_str(year, pl.lit("/"), month, pl.lit("/"), day, pl.lit(" 25:61")),
            pl.lit("yesterday"),
            pl.concat_str(year, pl.lit("-13-45 99:00:00")),
            pl.lit("0000-00-00 00:00:00"),
            pl.concat_str(pl.lit("31/02/"), year, pl.lit(" 10:00")),
            pl.lit("N/A"),
        ],
    )


def negated(text: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("-"), text)


def duplicate(frame: pl.DataFrame, mask: np.ndarray) -> pl.DataFrame:
    """Each masked row is delivered twice in a row, byte for byte."""
    return frame[np.repeat(np.arange(frame.height), 1 + mask.astype(np.int64))]


def _output(frame: pl.DataFrame, columns: tuple[str, ...], keep: tuple[str, ...]) -> pl.DataFrame:
    return frame.select(*columns, *keep)


# --- customer --------------------------------------------------------------------------------------


def customers(frame: pl.DataFrame, rng: np.random.Generator, rates: dict[str, float]):

    n = frame.height
    u = rng.random((10, n))
    frame = frame.with_columns(_variants(rng, n, 8))
    dup_email = frame.get_column("_dup_email").to_numpy()
    e0 = rates["null_email"]
    e1 = e0 + rates["malformed_email"]
    e2 = e1 + rates["email_case_whitespace"]
    email_free = ~dup_email  # the reused email is shown exactly, so the duplicate stays findable
    masks = {
        "null_customer_id": u[0] < rates["null_customer_id"],
        "null_email": email_free & (u[1] < e0),
        "malformed_email": email_free & (u[1] >= e0) & (u[1] < e1),
        "email_case_whitespace": email_free & (u[1] >= e1) & (u[1] < e2),
        "invalid_age_group": u[2] < rates["invalid_age_group"],
        "invalid_gender": u[3] < rates["invalid_gender"],
        "messy_phone": u[4] < rates["messy_phone"],
        "messy_postal_code": u[5] < rates["messy_postal_code"],
        "messy_name": u[6] < rates["messy_name"],
        "malformed_timestamp": u[7] < rates["malformed_timestamp"],
    }
    created_side = u[8] < 0.5
    masks["ts_created"] = masks["malformed_timestamp"] & created_side
    masks["ts_updated"] = masks["malformed_timestamp"] & ~created_side

    fl = pl.col("_owner_first").str.to_lowercase()
    ll = pl.col("_owner_last").str.to_lowercase()
    num = pl.col("_owner_number")
    local = pl.concat_str(fl, pl.lit("."), ll, num)
    title_local = pl.concat_str(pl.col("_owner_first"), pl.lit("."), pl.col("_owner_last"), num)
    bad_email = _choose(
        pl.col("_v0"),
        [
            pl.concat_str(local, pl.lit("example.com")),
            pl.concat_str(local, pl.lit("@")),
            pl.concat_str(local, pl.lit("@example")),
            pl.concat_str(local, pl.lit("@@example.com")),
            pl.concat_str(fl, pl.lit(" "), ll, num, pl.lit("@example.com")),
        ],
    )
    cased_email = _choose(
        pl.col("_v0"),
        [
            pl.concat_str(title_local, pl.lit("@example.com")),
            pl.col("email").str.to_uppercase(),
            pl.concat_str(pl.lit("  "), pl.col("email"), pl.lit(" ")),
            pl.concat_str(pl.lit(" "), title_local, pl.lit("@Example.COM  ")),
        ],
    )
    area, exch, line = pl.col("_area"), pl.col("_exch"), pl.col("_line")
    messy_phone = _choose(
        pl.col("_v1"),
        [
            pl.concat_str(pl.lit("("), area, pl.lit(") "), exch, pl.lit("-"), line),
            pl.concat_str(pl.lit("+1 "), area, pl.lit("."), exch, pl.lit("."), line),
            pl.concat_str(area, pl.lit("."), exch, pl.lit("."), line),
            pl.concat_str(area, pl.lit(" "), exch, pl.lit(" "), line),
            pl.concat_str(pl.lit(" "), area, pl.lit("-"), exch, pl.lit("-"), line, pl.lit(" ")),
        ],
    )
    z = pl.col("postal_code")
    with_o = pl.when(z.str.contains("0", literal=True)).then(z.str.replace("0", "o", literal=True, n=1)).otherwise(
        pl.concat_str(z.str.slice(0, 4), pl.lit("o"))
    )
    messy_postal = _choose(
        pl.col("_v2"),
        [
            pl.concat_str(pl.lit(" "), z, pl.lit(" ")),
            pl.concat_str(z, pl.lit(".")),
            pl.concat_str(z.str.slice(0, 2), pl.lit(" "), z.str.slice(2)),
            pl.concat_str(pl.lit(" "), with_o, pl.lit(" ")),
            pl.concat_str(z, pl.lit(",")),
            pl.concat_str(pl.lit("#"), z),
        ],
    )
    fn, ln = pl.col("_first_name"), pl.col("_last_name")
    messy_name = _choose(
        pl.col("_v3"),
        [
            pl.col("name").str.to_uppercase(),
            pl.col("name").str.to_lowercase(),
            pl.concat_str(pl.lit("  "), fn, pl.lit("   "), ln, pl.lit(" ")),
            pl.concat_str(fn.str.to_lowercase(), pl.lit("  "), ln.str.to_uppercase()),
        ],
    )
    frame = _apply(
        frame,
        masks,
        {
            "customer_id": pl.when(pl.col("_m_null_customer_id")).then(None).otherwise(pl.col("customer_id")),
            "email": pl.when(pl.col("_m_null_email"))
            .then(None)
            .when(pl.col("_m_malformed_email"))
            .then(bad_email)
            .when(pl.col("_m_email_case_whitespace"))
            .then(cased_email)
            .otherwise(pl.col("email")),
            "age_group": _masked(
                "invalid_age_group", _choose(pl.col("_v4"), [pl.lit(v) for v in INVALID_AGE_GROUPS]), "age_group"
            ),
            "gender": _masked("invalid_gender", _choose(pl.col("_v5"), [pl.lit(v) for v in INVALID_GENDERS]), "gender"),
            "phone": _masked("messy_phone", messy_phone, "phone"),
            "postal_code": _masked("messy_postal_code", messy_postal, "postal_code"),
            "name": _masked("messy_name", messy_name, "name"),
            "created_at": _masked("ts_created", malformed_timestamp(pl.col("created_at"), pl.col("_v6")), "created_at"),
            "updated_at": _masked("ts_updated", malformed_timestamp(pl.col("updated_at"), pl.col("_v7")), "updated_at"),
        },
    )
    counts = {k: int(v.sum()) for k, v in masks.items() if not k.startswith("ts_")}
    counts["duplicate_email"] = int(dup_email.sum())
    dup = u[9] < rates["duplicate_row"]
    counts["duplicate_row"] = int(dup.sum())
    out = duplicate(_output(frame, SOURCE_COLUMNS["customer"], ("_day",)), dup)
    return out, counts


# --- product ---------------------------------------------------------------------------------------


def products(frame: pl.DataFrame, rng: np.random.Generator, rates: dict[str, float]):

    n = frame.height
    u = rng.random((4, n))
    change = frame.get_column("_change").to_numpy()
    masks = {
        # Only changed versions lose their id: a product's earlier valid version then stands, whereas a
        # blanked first version would turn every sale of the product into an unknown product.
        "null_product_id": change & (u[0] < rates["null_product_id"]),
        "negative_price": u[1] < rates["negative_price"],
    }
    on_cost = u[2] < 0.5
    masks["neg_cost"] = masks["negative_price"] & on_cost
    masks["neg_list"] = masks["negative_price"] & ~on_cost
    frame = _apply(
        frame,
        masks,
        {
            "product_id": pl.when(pl.col("_m_null_product_id")).then(None).otherwise(pl.col("product_id")),
            "cost": _masked("neg_cost", negated(pl.col("cost")), "cost"),
            "list_price": _masked("neg_list", negated(pl.col("list_price")), "list_price"),
        },
    )
    dup = u[3] < rates["duplicate_row"]
    counts = {
        "null_product_id": int(masks["null_product_id"].sum()),
        "negative_price": int(masks["negative_price"].sum()),
        "duplicate_row": int(dup.sum()),
    }
    return duplicate(_output(frame, SOURCE_COLUMNS["product"], ("_day",)), dup), counts


# --- sales_returns ---------------------------------------------------------------------------------


def sales(frame: pl.DataFrame, rng: np.random.Generator, rates: dict[str, float], keep: tuple[str, ...]):
    """`_section` 0 marks a line's first delivery; updates and returns repeat the source's true values."""

    n = frame.height
    u = rng.random((6, n))
    frame = frame.with_columns(_variants(rng, n, 1))
    new = frame.get_column("_section").to_numpy() == 0
    unknown = frame.get_column("_unknown").to_numpy()
    no_discount = frame.get_column("_disc_c").to_numpy() == 0
    masks = {
        "null_key": new & (u[0] < rates["null_key"]),
        "negative_quantity": new & (u[1] < rates["negative_quantity"]),
        "malformed_timestamp": new & (u[2] < rates["malformed_timestamp"]),
        # Only a zero discount is left empty: empty means 0, so blanking a real amount would change
        # the money. The tax is never zero, so it is never blanked.
        "empty_discount_or_tax": new & no_discount & (u[3] < rates["empty_discount_or_tax"]),
    }
    # An unknown product keeps its id visible: the blanked key is then the customer's.
    on_customer = unknown | (u[4] < 0.5)
    masks["null_customer"] = masks["null_key"] & on_customer
    masks["null_product"] = masks["null_key"] & ~on_customer
    frame = _apply(
        frame,
        masks,
        {
            "customer_id": pl.when(pl.col("_m_null_customer")).then(None).otherwise(pl.col("customer_id")),
            "product_id": pl.when(pl.col("_m_null_product")).then(None).otherwise(pl.col("product_id")),
            "quantity": _masked("negative_quantity", negated(pl.col("quantity")), "quantity"),
            "order_ts": _masked(
                "malformed_timestamp", malformed_timestamp(pl.col("order_ts"), pl.col("_v0")), "order_ts"
            ),
            "discount_amount": pl.when(pl.col("_m_empty_discount_or_tax"))
            .then(None)
            .otherwise(pl.col("discount_amount")),
        },
    )
    dup = u[5] < rates["duplicate_row"]
    kinds = ("null_key", "negative_quantity", "malformed_timestamp", "empty_discount_or_tax")
    counts = {k: int(masks[k].sum()) for k in kinds}
    counts["unknown_product"] = int((new & unknown).sum())
    counts["duplicate_row"] = int(dup.sum())
    return duplicate(_output(frame, SOURCE_COLUMNS["sales_returns"], keep), dup), counts


# --- payment_refund --------------------------------------------------------------------------------


def payments(frame: pl.DataFrame, rng: np.random.Generator, rates: dict[str, float], keep: tuple[str, ...]):
    """`_section` 0 marks a payment's first delivery, 1 a refund update."""

    n = frame.height
    u = rng.random((5, n))
    frame = frame.with_columns(*_variants(rng, n, 1), pl.Series("_excess", u[4]))
    section = frame.get_column("_section").to_numpy()
    masks = {
        "null_order_id": (section == 0) & (u[0] < rates["null_order_id"]),
        "malformed_timestamp": (section == 0) & (u[1] < rates["malformed_timestamp"]),
        "refund_exceeds_amount": (section == 1) & (u[2] < rates["refund_exceeds_amount"]),
    }
    amount = pl.col("_amount_c")
    excess = amount + 1 + (amount.cast(pl.Float64) * (0.05 + 0.45 * pl.col("_excess"))).round(0).cast(pl.Int64)
    frame = _apply(
        frame,
        masks,
        {
            "order_id": pl.when(pl.col("_m_null_order_id")).then(None).otherwise(pl.col("order_id")),
            "transaction_ts": _masked(
                "malformed_timestamp", malformed_timestamp(pl.col("transaction_ts"), pl.col("_v0")), "transaction_ts"
            ),
            "refund_amount": _masked("refund_exceeds_amount", money(excess), "refund_amount"),
        },
    )
    dup = u[3] < rates["duplicate_row"]
    counts = {k: int(v.sum()) for k, v in masks.items()}
    counts["duplicate_row"] = int(dup.sum())
    return duplicate(_output(frame, SOURCE_COLUMNS["payment_refund"], keep), dup), counts


# --- inventory, loyalty ----------------------------------------------------------------------------


def inventory(frame: pl.DataFrame, rng: np.random.Generator, rates: dict[str, float], keep: tuple[str, ...]):

    mask = rng.random(frame.height) < rates["negative_quantity"]
    negative = _masked("negative_quantity", negated(pl.col("quantity_on_hand")), "quantity_on_hand")
    frame = _apply(frame, {"negative_quantity": mask}, {"quantity_on_hand": negative})
    return _output(frame, SOURCE_COLUMNS["inventory"], keep), {"negative_quantity": int(mask.sum())}


def loyalty(frame: pl.DataFrame, rng: np.random.Generator, rates: dict[str, float], keep: tuple[str, ...]):
    """`_redeemed` says which points column carries the event's points."""

    u = rng.random((2, frame.height))
    redeemed = frame.get_column("_redeemed").to_numpy()
    masks = {
        "null_customer_id": u[0] < rates["null_customer_id"],
        "negative_points": u[1] < rates["negative_points"],
    }
    masks["neg_earned"] = masks["negative_points"] & ~redeemed
    masks["neg_redeemed"] = masks["negative_points"] & redeemed
    frame = _apply(
        frame,
        masks,
        {
            "customer_id": pl.when(pl.col("_m_null_customer_id")).then(None).otherwise(pl.col("customer_id")),
            "points_earned": _masked("neg_earned", negated(pl.col("points_earned")), "points_earned"),
            "points_redeemed": _masked("neg_redeemed", negated(pl.col("points_redeemed")), "points_redeemed"),
        },
    )
    counts = {k: int(masks[k].sum()) for k in ("null_customer_id", "negative_points")}
    return _output(frame, SOURCE_COLUMNS["loyalty"], keep), counts
