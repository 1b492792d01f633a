"""Dimensions: stores, customers and products, with their change history over the window.

Each entity is indexed in the order it comes into existence, so the entities that exist on a day
are a prefix of the index (see `prefix_choice`). Each builder returns the clean drop rows; the
customer and product builders then apply their documented defects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from retail_lakehouse.generator import dirty
from retail_lakehouse.generator._util import (
    DAY_SECONDS,
    date_text,
    money,
    pick,
    prefixed_id,
    stream,
    timestamp,
    weighted,
    width_for,
)
from retail_lakehouse.generator.reference import (
    AGE_GROUPS,
    AGE_WEIGHTS,
    CATEGORIES,
    CHURN_MIN_TENURE_DAYS,
    CHURN_RATE,
    CATEGORY_WEIGHTS,
    CITIES,
    CITY_WEIGHTS,
    DIRTY_RATES,
    FIRST_NAMES,
    GENDER_WEIGHTS,
    GENDERS,
    LAST_NAMES,
    PRICE_TEST_ELASTICITIES,
    PRICE_TEST_EVERY_DAYS,
    PRICE_TEST_LEVELS,
    PRICE_TEST_SHARE,
    PRODUCT_ADJECTIVES,
    PRODUCT_COLORS,
    SEGMENT_WEIGHTS,
    SEGMENTS,
    STORE_FOOTAGE,
    STORE_FORMAT_WEIGHTS,
    STORE_FORMATS,
)


@dataclass(frozen=True)
class Calendar:
    start_day: int  # epoch day of the first business date
    days: int

    @property
    def day_index(self) -> np.ndarray:
        return np.arange(self.days, dtype=np.int64)

    @property
    def weekday(self) -> np.ndarray:
        # 1970-01-01 was a Thursday (Monday = 0).
        return (self.start_day + self.day_index + 3) % 7

    def day_start(self, day: np.ndarray) -> np.ndarray:
        """Epoch seconds of 00:00:00 of each day index."""
        return (self.start_day + np.asarray(day, dtype=np.int64)) * DAY_SECONDS


_CITY_NAMES = tuple(c[0] for c in CITIES)
_CITY_STATES = tuple(c[1] for c in CITIES)
_CITY_REGIONS = tuple(c[2] for c in CITIES)
_CITY_ZIP3 = np.array([int(c[3]) for c in CITIES], dtype=np.int64)


def _zip_codes(rng: np.random.Generator, city: np.ndarray) -> np.ndarray:
    return _CITY_ZIP3[city] * 100 + rng.integers(0, 100, city.shape[0])


# --- stores ----------------------------------------------------------------------------------------

_STORE_SUFFIXES = ("Center", "Plaza", "Commons", "Square", "Market", "Crossing", "Galleria", "Point")
_FORMAT_TRAFFIC = np.array([2.0, 1.2, 0.8, 0.6])


@dataclass(frozen=True)
class Stores:
    count: int
    active: np.ndarray  # per day index: stores open on that day (a prefix of the index)
    cum_weight: np.ndarray  # traffic weights, cumulative
    id_width: int
    rows: pl.DataFrame  # store drops: SOURCE_COLUMNS["store"] + _day

    def ids(self, idx: pl.Expr) -> pl.Expr:
        return prefixed_id("S", idx + 1, self.id_width)


def build_stores(seed: int, cal: Calendar, scale: float) -> Stores:
    rng = stream(seed, "stores")
    n0 = max(3, round(50 * scale))
    event = rng.random(cal.days) < 1 / 30
    event[0] = False
    opening = rng.random(cal.days) < 0.4
    open_days = np.flatnonzero(event & opening)
    count = n0 + open_days.size

    city = weighted(rng, len(CITIES), CITY_WEIGHTS, count)
    fmt = weighted(rng, len(STORE_FORMATS), STORE_FORMAT_WEIGHTS, count)
    suffix = rng.integers(0, len(_STORE_SUFFIXES), count)
    lo = np.array([STORE_FOOTAGE[f][0] for f in STORE_FORMATS])
    hi = np.array([STORE_FOOTAGE[f][1] for f in STORE_FORMATS])
    footage = rng.integers(lo[fmt], hi[fmt] + 1) * 100
    opened = np.concatenate(
        [cal.start_day - rng.integers(365, 20 * 365, n0), cal.start_day + open_days]
    ).astype(np.int64)
    weight = rng.lognormal(0.0, 0.4, count) * _FORMAT_TRAFFIC[fmt]
    active = n0 + np.searchsorted(open_days, cal.day_index, side="right")

    # Rows: every initial store on day 0, then one row per opening or remodel.
    row_idx = [np.arange(n0)]
    row_day = [np.zeros(n0, dtype=np.int64)]
    row_fmt = [fmt[:n0].copy()]
    row_foot = [footage[:n0].copy()]
    cur_fmt, cur_foot = fmt.copy(), footage.copy()
    opened_so_far = 0
    for d in np.flatnonzero(event):
        if opening[d]:
            s = n0 + opened_so_far
            opened_so_far += 1
        else:
            s = int(rng.integers(0, active[d]))
            cur_fmt[s] = (cur_fmt[s] + rng.integers(1, len(STORE_FORMATS))) % len(STORE_FORMATS)
            f = cur_fmt[s]
            cur_foot[s] = rng.integers(lo[f], hi[f] + 1) * 100
        row_idx.append(np.array([s]))
        row_day.append(np.array([d]))
        row_fmt.append(np.array([cur_fmt[s]]))
        row_foot.append(np.array([cur_foot[s]]))
    idx = np.concatenate(row_idx)
    width = width_for(count, 3)
    rows = pl.DataFrame(
        {
            "idx": idx,
            "_day": np.concatenate(row_day).astype(np.int64),
            "city": city[idx],
            "suffix": suffix[idx],
            "fmt": np.concatenate(row_fmt),
            "footage": np.concatenate(row_foot),
            "opened": opened[idx],
        }
    ).select(
        prefixed_id("S", pl.col("idx") + 1, width).alias("store_id"),
        pl.concat_str(
            pick(_CITY_NAMES, pl.col("city")), pick(_STORE_SUFFIXES, pl.col("suffix")), separator=" "
        ).alias("name"),
        pick(_CITY_REGIONS, pl.col("city")).alias("region"),
        pick(STORE_FORMATS, pl.col("fmt")).alias("format"),
        pl.col("footage").cast(pl.String).alias("square_footage"),
        date_text(pl.col("opened")).alias("opened_date"),
        pl.col("_day"),
    )
    return Stores(count, active, np.cumsum(weight), width, rows)


# --- customers -------------------------------------------------------------------------------------

_NEW = SEGMENTS.index("New")  # the other segments are 0..2: Regular, Premium, VIP


@dataclass(frozen=True)
class Customers:
    count: int
    available: np.ndarray  # per day index: customers created before that day (a prefix)
    cum_weight: np.ndarray  # purchase propensity, cumulative
    id_width: int
    rows: pl.DataFrame  # customer drops: SOURCE_COLUMNS["customer"] + _day
    dirty_counts: dict[str, int]
    churn_day: np.ndarray  # day index from which the customer orders no more (days: never)

    def ids(self, idx: pl.Expr) -> pl.Expr:
        return prefixed_id("C", idx + 1, self.id_width)


def build_customers(seed: int, cal: Calendar, scale: float) -> Customers:
    rng = stream(seed, "customers")
    drng = stream(seed, "dirty.customer")
    rates = DIRTY_RATES["customer"]
    n0 = max(50, round(20_000 * scale))
    new = rng.poisson(0.002 * n0, cal.days)
    new[0] = 0
    count = n0 + int(new.sum())
    start_sec = cal.start_day * DAY_SECONDS

    initial_created = start_sec - rng.integers(DAY_SECONDS, 3 * 365 * DAY_SECONDS, n0)
    new_day = np.repeat(cal.day_index, new)
    new_created = cal.day_start(new_day) + rng.integers(0, DAY_SECONDS, new_day.size)
    # Ids follow creation order, so "created before day d" is a prefix of the index.
    created = np.sort(np.concatenate([initial_created, new_created]))
    first_day = np.concatenate([np.zeros(n0, dtype=np.int64), new_day])
    initial_updated = np.where(
        rng.random(n0) < 0.5,
        created[:n0],
        created[:n0] + ((start_sec - created[:n0]) * rng.random(n0)).astype(np.int64),
    )

    first = rng.integers(0, len(FIRST_NAMES), count)
    last = rng.integers(0, len(LAST_NAMES), count)
    gender = weighted(rng, len(GENDERS), GENDER_WEIGHTS, count)
    age = weighted(rng, len(AGE_GROUPS), AGE_WEIGHTS, count)
    city = weighted(rng, len(CITIES), CITY_WEIGHTS, count)
    zipc = _zip_codes(rng, city)
    phone = np.stack(
        [rng.integers(201, 990, count), rng.integers(200, 1000, count), rng.integers(0, 10_000, count)], axis=1
    )
    established = weighted(rng, len(SEGMENTS), SEGMENT_WEIGHTS, count)
    segment = np.where(created < start_sec - 120 * DAY_SECONDS, established, _NEW)
    # Pareto-shaped propensity: a minority of customers places most of the orders.
    weight = np.minimum((1.0 - rng.random(count)) ** (-1 / 1.3), 200.0)

    # duplicate_email is a property of the customer (every later version repeats it): a customer
    # reuses the email of one created before it.
    email_owner = np.arange(count)
    dup_email = np.zeros(count, dtype=bool)
    dup_email[1:] = drng.random(count - 1) < rates["duplicate_email"]
    dup_idx = np.flatnonzero(dup_email)
    donors = (drng.random(dup_idx.size) * dup_idx).astype(np.int64)
    for i, donor in zip(dup_idx.tolist(), donors.tolist()):
        email_owner[i] = email_owner[donor]

    # Versions: initial customers on day 0, new customers on their creation day, then changes.
    snap_seg, snap_city, snap_zip = segment.copy(), city.copy(), zipc.copy()
    parts = {
        "idx": [np.arange(count)],
        "_day": [first_day],
        "seg": [snap_seg.copy()],
        "city": [snap_city.copy()],
        "zip": [snap_zip.copy()],
        "updated": [np.concatenate([initial_updated, created[n0:]])],
        "first": [np.ones(count, dtype=bool)],
    }
    # Customers created before each day: they can change that day, and place orders.
    existing_before = n0 + np.concatenate([[0], np.cumsum(new)[:-1]])
    for d in range(1, cal.days):
        m = min(int(rng.poisson(0.003 * n0)), int(existing_before[d]))
        if m == 0:
            continue
        chosen = np.sort(rng.choice(int(existing_before[d]), m, replace=False))
        segment_change = rng.random(m) < 0.6
        seg_c = chosen[segment_change]
        # New customers graduate to Regular or Premium; the others move among Regular/Premium/VIP.
        cur = snap_seg[seg_c]
        snap_seg[seg_c] = np.where(
            cur == _NEW, rng.integers(0, 2, seg_c.size), (cur + rng.integers(1, 3, seg_c.size)) % 3
        )
        moved = chosen[~segment_change]
        snap_city[moved] = weighted(rng, len(CITIES), CITY_WEIGHTS, moved.size)
        snap_zip[moved] = _zip_codes(rng, snap_city[moved])
        parts["idx"].append(chosen)
        parts["_day"].append(np.full(m, d, dtype=np.int64))
        parts["seg"].append(snap_seg[chosen])
        parts["city"].append(snap_city[chosen])
        parts["zip"].append(snap_zip[chosen])
        parts["updated"].append(cal.day_start(np.full(m, d)) + rng.integers(0, DAY_SECONDS, m))
        parts["first"].append(np.zeros(m, dtype=bool))
    cols = {k: np.concatenate(v) for k, v in parts.items()}
    order = np.lexsort((cols["idx"], cols["_day"]))
    cols = {k: v[order] for k, v in cols.items()}
    idx = cols["idx"]
    owner = email_owner[idx]
    width = width_for(count, 6)

    frame = pl.DataFrame(
        {
            "idx": idx,
            "_day": cols["_day"],
            "first": first[idx],
            "last": last[idx],
            "owner_first": first[owner],
            "owner_last": last[owner],
            "owner": owner,
            "area": phone[idx, 0],
            "exch": phone[idx, 1],
            "line": phone[idx, 2],
            "gender": gender[idx],
            "age": age[idx],
            "city": cols["city"],
            "zip": cols["zip"],
            "seg": cols["seg"],
            "created": created[idx],
            "updated": cols["updated"],
            "_first_version": cols["first"],
            "_dup_email": cols["first"] & dup_email[idx],
        }
    )
    first_name = pick(FIRST_NAMES, pl.col("first"))
    last_name = pick(LAST_NAMES, pl.col("last"))
    frame = frame.with_columns(
        prefixed_id("C", pl.col("idx") + 1, width).alias("customer_id"),
        pl.concat_str(first_name, last_name, separator=" ").alias("name"),
        first_name.alias("_first_name"),
        last_name.alias("_last_name"),
        pick(FIRST_NAMES, pl.col("owner_first")).alias("_owner_first"),
        pick(LAST_NAMES, pl.col("owner_last")).alias("_owner_last"),
        pl.concat_str(
            pick(FIRST_NAMES, pl.col("owner_first")).str.to_lowercase(),
            pl.lit("."),
            pick(LAST_NAMES, pl.col("owner_last")).str.to_lowercase(),
            (pl.col("owner") + 1).cast(pl.String),
            pl.lit("@example.com"),
        ).alias("email"),
        (pl.col("owner") + 1).cast(pl.String).alias("_owner_number"),
        pl.col("area").cast(pl.String).alias("_area"),
        pl.col("exch").cast(pl.String).alias("_exch"),
        pl.col("line").cast(pl.String).str.zfill(4).alias("_line"),
        pick(GENDERS, pl.col("gender")).alias("gender"),
        pick(AGE_GROUPS, pl.col("age")).alias("age_group"),
        pick(_CITY_NAMES, pl.col("city")).alias("city"),
        pick(_CITY_STATES, pl.col("city")).alias("state"),
        pl.col("zip").cast(pl.String).str.zfill(5).alias("postal_code"),
        pl.lit("US").alias("country"),
        pick(SEGMENTS, pl.col("seg")).alias("customer_segment"),
        timestamp(pl.col("created")).alias("created_at"),
        timestamp(pl.col("updated")).alias("updated_at"),
    ).with_columns(pl.concat_str(pl.col("_area"), pl.col("_exch"), pl.col("_line"), separator="-").alias("phone"))
    rows, counts = dirty.customers(frame, drng, rates)
    return Customers(count, existing_before, np.cumsum(weight), width, rows, counts, _churn_days(seed, cal, first_day))


def _churn_days(seed: int, cal: Calendar, first_day: np.ndarray) -> np.ndarray:
    """A planted share of customers stops buying for good on a day at least two weeks after they
    exist, so churn scores have churners to find."""
    rng = stream(seed, "churn")
    earliest = first_day + CHURN_MIN_TENURE_DAYS
    day = earliest + (rng.random(first_day.size) * np.maximum(cal.days - earliest, 0)).astype(np.int64)
    churns = (rng.random(first_day.size) < CHURN_RATE) & (earliest < cal.days)
    return np.where(churns, day, cal.days)


# --- products --------------------------------------------------------------------------------------

_CATEGORY_NAMES = tuple(CATEGORIES)


@dataclass(frozen=True)
class Products:
    count: int  # real products (initial and new), ids 1..count
    orphans: int  # ids count+1..count+orphans never appear in any product drop
    first_day: np.ndarray  # day index of each real product's first drop (sorted)
    available: np.ndarray  # per day index: products in a drop on or before that day (a prefix)
    cum_weight: np.ndarray  # popularity over real products, cumulative
    id_width: int
    rows: pl.DataFrame  # product drops: SOURCE_COLUMNS["product"] + _day
    dirty_counts: dict[str, int]
    price_tests: np.ndarray  # products whose price moves on a schedule and whose demand follows it
    elasticity: np.ndarray  # the planted price elasticity of each price-test product
    _base_price: np.ndarray  # real products then orphans, cents
    _change_key: np.ndarray
    _change_price: np.ndarray
    _days: int

    def ids(self, idx: pl.Expr) -> pl.Expr:
        return prefixed_id("P", idx + 1, self.id_width)

    def price_on(self, product: np.ndarray, day: np.ndarray) -> np.ndarray:
        """List price in cents of each product on each day index (orphans: their fixed price)."""
        product = np.asarray(product, dtype=np.int64)
        query = product * (self._days + 1) + np.asarray(day, dtype=np.int64) + 1
        if self._change_key.size == 0:
            return self._base_price[product]
        i = np.searchsorted(self._change_key, query, side="right") - 1
        safe = np.maximum(i, 0)
        hit = (i >= 0) & (self._change_key[safe] // (self._days + 1) == product)
        return np.where(hit, self._change_price[safe], self._base_price[product])

    def demand_factor(self, product: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Relative demand of each line's product on its day: (price / base price) ** elasticity for
        a price-test product, scaled so the cheapest level is 1; 1 for every other product."""
        if self.price_tests.size == 0:
            return np.ones(np.shape(product))
        test = np.searchsorted(self.price_tests, product)
        safe = np.minimum(test, self.price_tests.size - 1)
        hit = self.price_tests[safe] == product
        ratio = self.price_on(product, day) / self._base_price[product]
        e = self.elasticity[safe]
        # Headroom below the cheapest level: a price rounded to whole dollars can fall a little under it.
        return np.where(hit, (ratio / (0.95 * min(PRICE_TEST_LEVELS))) ** e, 1.0)

    def late_arrivals(self, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index range [lo, hi) of products whose first drop comes 1 to 5 days after each day."""
        lo = np.searchsorted(self.first_day, day + 1, side="left")
        hi = np.searchsorted(self.first_day, day + 5, side="right")
        return lo, hi


def _list_prices(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    median = np.array([CATEGORIES[c][3] for c in _CATEGORY_NAMES])[category]
    dollars = np.maximum(1, np.rint(np.exp(np.log(median) + 0.6 * rng.standard_normal(category.size))))
    return dollars.astype(np.int64) * 100 - 1  # prices end in .99


def build_products(seed: int, cal: Calendar, scale: float) -> Products:
    rng = stream(seed, "products")
    drng = stream(seed, "dirty.product")
    rates = DIRTY_RATES["product"]
    n0 = max(20, round(2000 * scale))
    new = rng.poisson(max(0.3, 0.0005 * n0), cal.days)
    new[0] = 0
    count = n0 + int(new.sum())
    orphans = max(3, round(20 * scale))
    total = count + orphans
    first_day = np.concatenate([np.zeros(n0, dtype=np.int64), np.repeat(cal.day_index, new)])

    category = weighted(rng, len(_CATEGORY_NAMES), CATEGORY_WEIGHTS, total)
    n_sub = np.array([len(CATEGORIES[c][0]) for c in _CATEGORY_NAMES])
    n_brand = np.array([len(CATEGORIES[c][2]) for c in _CATEGORY_NAMES])
    sub = (rng.random(total) * n_sub[category]).astype(np.int64)
    item = rng.integers(0, 4, total)
    brand = (rng.random(total) * n_brand[category]).astype(np.int64)
    adjective = rng.integers(0, len(PRODUCT_ADJECTIVES), total)
    color = np.where(rng.random(total) < 0.15, rng.integers(0, len(PRODUCT_COLORS), total), -1)
    suppliers = max(5, round(100 * scale))
    supplier = rng.integers(0, suppliers, total)
    price = _list_prices(rng, category)
    cost = np.rint(price * rng.uniform(0.40, 0.75, total)).astype(np.int64)
    popularity = rng.lognormal(0.0, 1.0, count)
    start_sec = cal.start_day * DAY_SECONDS
    initial_updated = start_sec - rng.integers(DAY_SECONDS, 365 * DAY_SECONDS, n0)
    trng = stream(seed, "price_tests")
    # Products of $10 or more, so a price level rounded to whole dollars stays near its level.
    candidates = np.flatnonzero(price[:n0] >= 1000)
    tests = np.sort(trng.choice(candidates, min(len(PRICE_TEST_ELASTICITIES), candidates.size), replace=False))
    elasticity = np.array(PRICE_TEST_ELASTICITIES[: tests.size])[trng.permutation(tests.size)]
    is_test = np.zeros(total, dtype=bool)
    is_test[tests] = True
    others = popularity[~is_test[:count]].sum()
    popularity[tests] = PRICE_TEST_SHARE * others
    # Each test product's price at each level, in whole dollars ending in .99 like every list price.
    level_dollars = np.rint(((price[tests] + 1) // 100)[:, None] * np.array(PRICE_TEST_LEVELS))
    level_prices = np.maximum(1, level_dollars).astype(np.int64) * 100 - 1
    test_rows = np.arange(tests.size)

    parts = {
        "idx": [np.arange(count)],
        "_day": [first_day],
        "price": [price[:count].copy()],
        "cost": [cost[:count].copy()],
        "updated": [np.concatenate([initial_updated, cal.day_start(first_day[n0:])])],
        "change": [np.zeros(count, dtype=bool)],
    }
    cur_price, cur_cost = price.copy(), cost.copy()
    change_p, change_d, change_v = [], [], []
    for d in range(1, cal.days):
        existing = int(np.searchsorted(first_day, d, side="left"))
        m = min(int(rng.poisson(0.005 * n0)), existing)
        if m == 0 and d % PRICE_TEST_EVERY_DAYS:
            continue
        chosen = np.sort(rng.choice(existing, m, replace=False))
        dollars = (cur_price[chosen] + 1) // 100
        moved = np.maximum(1, np.rint(dollars * rng.uniform(0.85, 1.20, m))).astype(np.int64)
        moved = np.where(moved == dollars, dollars + 1, moved)
        new_cost = np.rint((moved * 100 - 1) * rng.uniform(0.40, 0.75, m)).astype(np.int64)
        # Price-test products move only on their schedule, to a level of their first price, at their first cost.
        keep = ~is_test[chosen]
        if d % PRICE_TEST_EVERY_DAYS == 0:
            drawn = trng.integers(0, len(PRICE_TEST_LEVELS), tests.size)
            # A level equal to the current price moves on to the next one, so every scheduled day is a change.
            same = level_prices[test_rows, drawn] == cur_price[tests]
            drawn = np.where(same, (drawn + 1) % len(PRICE_TEST_LEVELS), drawn)
            level_price = level_prices[test_rows, drawn]
            order = np.argsort(np.concatenate([chosen[keep], tests]))
            chosen = np.concatenate([chosen[keep], tests])[order]
            moved = np.concatenate([moved[keep], (level_price + 1) // 100])[order]
            new_cost = np.concatenate([new_cost[keep], cost[tests]])[order]
        else:
            chosen, moved, new_cost = chosen[keep], moved[keep], new_cost[keep]
        m = chosen.size
        if m == 0:
            continue
        cur_price[chosen] = moved * 100 - 1
        cur_cost[chosen] = new_cost
        change_p.append(chosen)
        change_d.append(np.full(m, d, dtype=np.int64))
        change_v.append(cur_price[chosen])
        parts["idx"].append(chosen)
        parts["_day"].append(np.full(m, d, dtype=np.int64))
        parts["price"].append(cur_price[chosen])
        parts["cost"].append(cur_cost[chosen])
        # Prices change at midnight, so every order of the day sees the new price.
        parts["updated"].append(cal.day_start(np.full(m, d)))
        parts["change"].append(np.ones(m, dtype=bool))
    cp = np.concatenate(change_p) if change_p else np.zeros(0, dtype=np.int64)
    cd = np.concatenate(change_d) if change_d else np.zeros(0, dtype=np.int64)
    cv = np.concatenate(change_v) if change_v else np.zeros(0, dtype=np.int64)
    key = cp * (cal.days + 1) + cd + 1
    key_order = np.argsort(key, kind="stable")

    cols = {k: np.concatenate(v) for k, v in parts.items()}
    order = np.lexsort((cols["idx"], cols["_day"]))
    cols = {k: v[order] for k, v in cols.items()}
    idx = cols["idx"]
    width = width_for(total, 5)
    subcats = tuple(s for c in _CATEGORY_NAMES for s in CATEGORIES[c][0])
    sub_offset = np.concatenate([[0], np.cumsum(n_sub)[:-1]])
    items = tuple(i for c in _CATEGORY_NAMES for per_sub in CATEGORIES[c][1] for i in per_sub)
    brands = tuple(b for c in _CATEGORY_NAMES for b in CATEGORIES[c][2])
    brand_offset = np.concatenate([[0], np.cumsum(n_brand)[:-1]])
    flat_sub = sub_offset[category] + sub
    frame = pl.DataFrame(
        {
            "idx": idx,
            "_day": cols["_day"],
            "cat": category[idx],
            "sub": flat_sub[idx],
            "item": (flat_sub * 4 + item)[idx],
            "brand": (brand_offset[category] + brand)[idx],
            "adj": adjective[idx],
            "color": color[idx],
            "supplier": supplier[idx],
            "_cost_c": cols["cost"],
            "_price_c": cols["price"],
            "updated": cols["updated"],
            "_change": cols["change"],
        }
    ).with_columns(
        prefixed_id("P", pl.col("idx") + 1, width).alias("product_id"),
        pl.concat_str(pl.lit("SKU-"), pick(_CATEGORY_NAMES, pl.col("cat")).str.slice(0, 3).str.to_uppercase(),
                      pl.lit("-"), (pl.col("idx") + 1).cast(pl.String).str.zfill(6)).alias("sku"),
        pl.concat_str(
            pick(brands, pl.col("brand")),
            pl.lit(" "),
            pick(PRODUCT_ADJECTIVES, pl.col("adj")),
            pl.lit(" "),
            pick(items, pl.col("item")),
            pl.when(pl.col("color") >= 0)
            .then(pl.lit(", ") + pick(PRODUCT_COLORS, pl.col("color").clip(0)))
            .otherwise(pl.lit("")),
        ).alias("name"),
        pick(_CATEGORY_NAMES, pl.col("cat")).alias("category"),
        pick(subcats, pl.col("sub")).alias("subcategory"),
        pick(brands, pl.col("brand")).alias("brand"),
        prefixed_id("SUP", pl.col("supplier") + 1, 4).alias("supplier_id"),
        money(pl.col("_cost_c")).alias("cost"),
        money(pl.col("_price_c")).alias("list_price"),
        timestamp(pl.col("updated")).alias("updated_at"),
    )
    rows, counts = dirty.products(frame, drng, rates)
    available = np.searchsorted(first_day, cal.day_index, side="right")
    return Products(
        count=count,
        orphans=orphans,
        first_day=first_day,
        available=available,
        cum_weight=np.cumsum(popularity),
        id_width=width,
        rows=rows,
        dirty_counts=counts,
        price_tests=tests,
        elasticity=elasticity,
        _base_price=price,
        _change_key=key[key_order],
        _change_price=cv[key_order],
        _days=cal.days,
    )
