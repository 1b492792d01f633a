"""Demand forecast (seed 004 §3): units per day for the next 30 days, per product and store and per
category and store. Pure Polars and NumPy.

The seed's features: target lags 1, 7, 14 and 28 and a 7-day rolling mean, with the day of week.
One linear model per level is fitted on every series of that level at once (a pooled, "global"
model, as mlforecast fits), each series divided by its own mean so that large and small series
weigh alike; ridge-regularized least squares; forecasts are recursive (day h feeds the lags of
day h + 1). A product-store series gets its own forecast only where the product sells there on at
least half of the days; the category-store level covers every pair.

Accuracy is measured as a user would: the model is fitted without the last weeks of history and
forecasts them, beside the seasonal-naive forecast (the same weekday a week earlier, repeated);
both are scored by MASE (mean absolute error over the in-sample seasonal-naive error) and sMAPE.
"""

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from retail_lakehouse.catalog import schema

DEMAND_FORECAST_SCHEMA = schema("gold", "demand_forecast")
FORECAST_READS = {
    "fact_sales": ("store_id", "product_id", "order_date", "quantity", "order_status"),
    "dim_product": ("product_id", "is_current", "category"),
}
HORIZON = 30
LAGS = (1, 7, 14, 28)
ROLLING = 7
SEASON = 7
DENSE_SHARE = 0.5
# Fewer days than this leave under a week of rows after the longest lag: nothing is fitted.
MIN_HISTORY = max(LAGS) + 7
RIDGE = 1e-3


@dataclass(frozen=True)
class Forecast:
    table: pl.DataFrame  # DEMAND_FORECAST_SCHEMA
    accuracy: pl.DataFrame  # per level: series, holdout_days, MASE and sMAPE of the model and of seasonal-naive
    preview: pl.DataFrame  # the held-out days of the largest category-store series: actual, model, seasonal-naive


def build_demand_forecast(fact_sales: pl.DataFrame, dim_product: pl.DataFrame, horizon: int = HORIZON) -> Forecast:
    sold = fact_sales.filter(pl.col("order_status") != "Cancelled")
    empty = Forecast(pl.DataFrame(schema=DEMAND_FORECAST_SCHEMA), _accuracy([]), pl.DataFrame())
    if sold.is_empty():
        return empty
    first, last = sold["order_date"].min(), sold["order_date"].max()
    dates = pl.date_range(first, last, eager=True)
    if dates.len() < MIN_HISTORY:
        return empty
    categories = dim_product.filter(pl.col("is_current")).select("product_id", "category")
    units = sold.join(categories, on="product_id").with_columns(pl.col("quantity").cast(pl.Float64))
    levels = {
        "product_store": _series(units, ("store_id", "category", "product_id"), dates, min_days=DENSE_SHARE * dates.len()),
        "category_store": _series(units, ("store_id", "category"), dates),
    }
    weekday = dates.dt.weekday().to_numpy() - 1
    future = pl.date_range(last + dt.timedelta(days=1), last + dt.timedelta(days=horizon), eager=True)
    future_weekday = future.dt.weekday().to_numpy() - 1
    holdout = min(horizon, (dates.len() - MIN_HISTORY) // SEASON * SEASON)

    tables, scores, preview = [], [], pl.DataFrame()
    for level, (keys, y) in levels.items():
        if not keys.height:
            scores.append({"level": level, "series": 0})
            continue
        if holdout >= SEASON:
            train, test = y[:, :-holdout], y[:, -holdout:]
            model = _recursive(train, _fit(train, weekday[:-holdout]), weekday[-holdout:])
            naive = _seasonal_naive(train, holdout)
            scores.append({
                "level": level, "series": keys.height, "holdout_days": holdout,
                "mase_model": _mase(test, model, train), "mase_seasonal_naive": _mase(test, naive, train),
                "smape_model": _smape(test, model), "smape_seasonal_naive": _smape(test, naive),
            })
            if level == "category_store":
                top = int(np.argmax(y.sum(axis=1)))
                preview = pl.DataFrame({
                    "date": dates[-holdout:], "actual": test[top], "model": model[top].round(1), "seasonal_naive": naive[top],
                }).with_columns(pl.lit(f"{keys['store_id'][top]} / {keys['category'][top]}").alias("series"))
        else:
            scores.append({"level": level, "series": keys.height, "holdout_days": 0})
        predicted = _recursive(y, _fit(y, weekday), future_weekday)
        tables.append(_rows(level, keys, future, predicted, last))
    table = pl.concat(tables) if tables else empty.table
    return Forecast(table.cast(DEMAND_FORECAST_SCHEMA), _accuracy(scores), preview)


def _series(units: pl.DataFrame, keys: tuple[str, ...], dates: pl.Series, min_days: float = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """The keys of each series that sells on at least `min_days` days, and a (series × day) matrix
    of units, zero on days without sales. The sparse series are dropped before the matrix is built:
    at scale 10 the product-store pairs with any sale would make it (millions × 365) 15 GB."""
    daily = units.group_by(*keys, "order_date").agg(pl.col("quantity").sum())
    if min_days:
        daily = daily.filter((pl.col("quantity") > 0).sum().over(keys) >= min_days)
    index = daily.select(keys).unique().sort(keys).with_row_index("_series")
    day = (daily["order_date"] - dates[0]).dt.total_days().to_numpy()
    series = daily.join(index, on=list(keys), how="left")["_series"].to_numpy()
    y = np.zeros((index.height, dates.len()))
    np.add.at(y, (series, day), daily["quantity"].to_numpy())
    return index.drop("_series"), y


def _features(y: np.ndarray, t: int, weekday: int) -> np.ndarray:
    """Features of day t from the days before it (y already divided by each series' scale)."""
    lags = [y[:, t - lag] for lag in LAGS]
    rolling = y[:, t - ROLLING:t].mean(axis=1)
    days = np.zeros((y.shape[0], 7))
    days[:, weekday] = 1.0
    return np.column_stack([*lags, rolling, days])


def _scale(y: np.ndarray) -> np.ndarray:
    return np.maximum(y.mean(axis=1, keepdims=True), 1e-9)


def _fit(y: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    scaled = y / _scale(y)
    rows = range(max(LAGS), y.shape[1])
    x = np.concatenate([_features(scaled, t, weekday[t]) for t in rows])
    target = np.concatenate([scaled[:, t] for t in rows])
    gram = x.T @ x + RIDGE * len(target) * np.eye(x.shape[1])
    return np.linalg.solve(gram, x.T @ target)


def _recursive(y: np.ndarray, coef: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Forecast len(weekday) days after y, each day's forecast feeding the next day's lags."""
    scale = _scale(y)
    path = np.concatenate([y / scale, np.zeros((y.shape[0], weekday.size))], axis=1)
    start = y.shape[1]
    for h, day in enumerate(weekday):
        path[:, start + h] = np.maximum(_features(path, start + h, day) @ coef, 0.0)
    return path[:, start:] * scale


def _seasonal_naive(y: np.ndarray, horizon: int) -> np.ndarray:
    last_week = y[:, -SEASON:]
    return np.tile(last_week, (1, -(-horizon // SEASON)))[:, :horizon]


def _mase(actual: np.ndarray, predicted: np.ndarray, train: np.ndarray) -> float | None:
    scale = np.abs(train[:, SEASON:] - train[:, :-SEASON]).mean(axis=1)
    ok = scale > 0
    if not ok.any():
        return None
    return float((np.abs(actual - predicted).mean(axis=1)[ok] / scale[ok]).mean())


def _smape(actual: np.ndarray, predicted: np.ndarray) -> float:
    denominator = np.abs(actual) + np.abs(predicted)
    terms = np.where(denominator > 0, 2 * np.abs(actual - predicted) / np.where(denominator > 0, denominator, 1), 0.0)
    return float(terms.mean())


def _rows(level: str, keys: pl.DataFrame, future: pl.Series, predicted: np.ndarray, last: dt.date) -> pl.DataFrame:
    n, h = predicted.shape
    frame = keys.select(pl.all().gather(np.repeat(np.arange(n), h)))
    return frame.with_columns(
        pl.lit(level).alias("level"),
        pl.Series("forecast_date", np.tile(future.to_numpy(), n)),
        pl.Series("horizon_day", np.tile(np.arange(1, h + 1), n)),
        pl.Series("forecast_units", predicted.reshape(-1).round(3)),
        pl.lit(last).alias("as_of_date"),
        *([] if "product_id" in keys.columns else [pl.lit(None, pl.String).alias("product_id")]),
    ).select(list(DEMAND_FORECAST_SCHEMA))


def _accuracy(scores: list[dict]) -> pl.DataFrame:
    columns = {"level": pl.String, "series": pl.Int64, "holdout_days": pl.Int64, "mase_model": pl.Float64,
               "mase_seasonal_naive": pl.Float64, "smape_model": pl.Float64, "smape_seasonal_naive": pl.Float64}
    return pl.DataFrame(scores, schema=columns)
