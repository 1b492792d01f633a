"""Random streams, integer money arithmetic and vectorised text formatting shared by the parts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

_EPOCH = dt.date(1970, 1, 1)
DAY_SECONDS = 86_400

# One independent stream per concern, keyed by a fixed number: adding draws to one concern never
# shifts the data of another, and the numbers (unlike hash()) are stable across processes.
_STREAMS: dict[str, int] = {
    "calendar": 1,
    "stores": 2,
    "customers": 3,
    "products": 4,
    "orders": 5,
    "lines": 6,
    "returns": 7,
    "payments": 8,
    "loyalty": 9,
    "stock": 10,
    "dirty.customer": 11,
    "dirty.product": 12,
    "dirty.sales_returns": 13,
    "dirty.payment_refund": 14,
    "dirty.inventory": 15,
    "dirty.loyalty": 16,
    "malformed": 17,
    "cards": 18,
    "churn": 19,
    "churn.orders": 20,
    "price_tests": 21,
    "demand": 22,
}


def stream(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _STREAMS[name]]))


def epoch_day(day: dt.date) -> int:
    return (day - _EPOCH).days


def weighted(rng: np.random.Generator, n_options: int, weights, size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(n_options, size=size, p=p / p.sum())


def prefix_choice(rng: np.random.Generator, cum_weights: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Weighted draw among the first `available[i]` items for each draw i.

    Items are indexed in the order they come into existence (customers, products, stores), so
    "what exists on day d" is always a prefix and one cumulative-weight array serves every day.
    """
    available = np.asarray(available, dtype=np.int64)
    total = cum_weights[available - 1]
    idx = np.searchsorted(cum_weights, rng.random(available.shape[0]) * total, side="right")
    return np.minimum(idx, available - 1)


def div_half_even(numerator: np.ndarray, denominator) -> np.ndarray:
    """Integer division rounded half to even, for non-negative numerators (cents arithmetic)."""
    numerator = np.asarray(numerator, dtype=np.int64)
    denominator = np.asarray(denominator, dtype=np.int64)
    q, r = np.divmod(numerator, denominator)
    up = (2 * r > denominator) | ((2 * r == denominator) & (q % 2 == 1))
    return q + up.astype(np.int64)


# --- polars text formatting ----------------------------------------------------------------------


def money(col: pl.Expr) -> pl.Expr:
    """Integer cents -> "12.50", "-3.05"; nulls stay null."""
    a = col.abs()
    return pl.concat_str(
        pl.when(col < 0).then(pl.lit("-")).otherwise(pl.lit("")),
        (a // 100).cast(pl.String),
        pl.lit("."),
        (a % 100).cast(pl.String).str.zfill(2),
    )


def timestamp(col: pl.Expr) -> pl.Expr:
    """Epoch seconds -> 'yyyy-MM-dd HH:mm:ss' (UTC)."""
    return pl.from_epoch(col, time_unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")


def date_text(col: pl.Expr) -> pl.Expr:
    """Epoch days -> 'yyyy-MM-dd'."""
    return pl.from_epoch(col, time_unit="d").dt.strftime("%Y-%m-%d")


def compact_date(col: pl.Expr) -> pl.Expr:
    """Epoch days -> 'yyyyMMdd' (as used inside ids)."""
    return pl.from_epoch(col, time_unit="d").dt.strftime("%Y%m%d")


def prefixed_id(prefix: str, number: pl.Expr, width: int) -> pl.Expr:
    return pl.concat_str(pl.lit(prefix), number.cast(pl.String).str.zfill(width))


def pick(options: tuple[str, ...], index: pl.Expr) -> pl.Expr:
    """Look up a vocabulary entry by integer index."""
    return pl.lit(pl.Series(list(options), dtype=pl.String)).gather(index)


def width_for(largest: int, minimum: int) -> int:
    return max(minimum, len(str(largest)))
