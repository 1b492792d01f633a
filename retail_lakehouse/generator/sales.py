"""Orders and their lines, and the drops derived from them: sales_returns, payment_refund, loyalty.

All money is integer cents; every derived amount (tax, totals, returns, refunds) is computed from
the same integers, so the files agree to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from retail_lakehouse.generator import dirty
from retail_lakehouse.generator._util import (
    DAY_SECONDS,
    compact_date,
    date_text,
    div_half_even,
    money,
    pick,
    prefix_choice,
    stream,
    timestamp,
    weighted,
    width_for,
)
from retail_lakehouse.generator.dims import Calendar, Customers, Products, Stores
from retail_lakehouse.generator.reference import (
    CARD_BRANDS,
    CHANNEL_VARIANT_WEIGHTS,
    CHANNEL_VARIANTS,
    CHANNEL_WEIGHTS,
    CHANNELS,
    DIRTY_RATES,
    LATE_SALES_STAMP,
    LOYALTY_EVENT_TYPES,
    LOYALTY_EVENT_WEIGHTS,
    ORDER_STATUSES,
    PAYMENT_STATUSES,
    PAYMENT_TYPES,
    REFUND_STATUSES,
    RETURN_REASON_WEIGHTS,
    RETURN_REASONS,
    REGULAR_STAMP,
    SOURCE_COLUMNS,
)

ONLINE, STORE, MOBILE = (CHANNELS.index(c) for c in ("Online", "Store", "Mobile"))
COMPLETED, SHIPPED, DELIVERED, CANCELLED = (
    ORDER_STATUSES.index(s) for s in ("Completed", "Shipped", "Delivered", "Cancelled")
)

LINES_PER_ORDER = (0.36, 0.28, 0.18, 0.11, 0.07)
QUANTITY_WEIGHTS = (0.62, 0.20, 0.10, 0.05, 0.03)
DELIVERY_DAYS_WEIGHTS = (0.15, 0.30, 0.25, 0.12, 0.08, 0.05, 0.05)  # 1..7 days
WEEKEND_UPLIFT = 1.3  # Friday, Saturday and Sunday
TREND_PER_YEAR = 0.2  # demand grows linearly, by this share of the first day's a year
RETURN_RATE = 0.08
MAX_RETURN_DAYS = 30
TAX_RATE_PERCENT = 8
SECOND_DROP_RATE = 0.1
BUNDLES = 6
BUNDLE_RATE = 0.2
# Orders by hour of day: stores open 08-22, online peaks in the evening.
STORE_HOURS = (0,) * 8 + (2, 3, 4, 5, 6, 6, 6, 6, 7, 8, 8, 7, 5, 3) + (0, 0)
ONLINE_HOURS = (2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 6, 6, 5, 5, 5, 5, 6, 7, 8, 9, 9, 7, 4)
_FLAT_VARIANTS = tuple(v for c in CHANNELS for v in CHANNEL_VARIANTS[c])


@dataclass(frozen=True)
class Orders:
    day: np.ndarray
    seq: np.ndarray  # 1-based number within the day, by order time
    customer: np.ndarray
    channel: np.ndarray
    variant: np.ndarray  # spelling of the channel, fixed per order
    store: np.ndarray
    ts: np.ndarray  # epoch seconds
    status: np.ndarray  # latest status
    first_status: np.ndarray  # status in the first delivery
    delivery_days: np.ndarray
    late_extract: np.ndarray  # delivered in the day's second sales drop
    updated: np.ndarray  # status updated by the day's second sales drop
    line_start: np.ndarray
    total: np.ndarray  # cents
    id_width: int


@dataclass(frozen=True)
class Lines:
    order: np.ndarray
    number: np.ndarray
    product: np.ndarray  # may be >= products.count: an orphan id
    unknown: np.ndarray  # product not in any product drop on or before the order date
    quantity: np.ndarray
    price: np.ndarray
    discount: np.ndarray
    tax: np.ndarray
    total: np.ndarray
    returned: np.ndarray  # returned on a day inside the window
    return_day: np.ndarray
    return_quantity: np.ndarray
    return_amount: np.ndarray
    return_reason: np.ndarray
    bundles: np.ndarray  # (BUNDLES, 2) product indexes often bought together


def build_orders(seed: int, cal: Calendar, scale: float, customers: Customers, products: Products, stores: Stores):
    rng = stream(seed, "orders")
    mean_daily = 1_000_000 * scale / 365
    weekend = cal.weekday >= 4
    base = mean_daily * 7 / (4 + 3 * WEEKEND_UPLIFT)
    trend = 1.0 + TREND_PER_YEAR * cal.day_index / 365
    expected_lines = base * trend * np.where(weekend, WEEKEND_UPLIFT, 1.0) * rng.lognormal(0.0, 0.05, cal.days)
    mean_lines = float(np.dot(np.arange(1, 6), LINES_PER_ORDER))
    per_day = rng.poisson(expected_lines / mean_lines)
    n = int(per_day.sum())
    day = np.repeat(cal.day_index, per_day)

    customer = prefix_choice(rng, customers.cum_weight, customers.available[day])
    # A churned customer's order goes to another customer (redrawn until one has not churned).
    crng = stream(seed, "churn.orders")
    for _ in range(20):
        gone = np.flatnonzero(customers.churn_day[customer] <= day)
        if not gone.size:
            break
        customer[gone] = prefix_choice(crng, customers.cum_weight, customers.available[day[gone]])
    channel = weighted(rng, 3, CHANNEL_WEIGHTS, n)
    variant = weighted(rng, 4, CHANNEL_VARIANT_WEIGHTS, n)
    store = prefix_choice(rng, stores.cum_weight, stores.active[day])
    hour = np.where(channel == STORE, weighted(rng, 24, STORE_HOURS, n), weighted(rng, 24, ONLINE_HOURS, n))
    ts = cal.day_start(day) + hour * 3600 + rng.integers(0, 3600, n)
    cancelled = rng.random(n) < 0.02
    status = np.where(channel == STORE, COMPLETED, np.where(rng.random(n) < 0.55, SHIPPED, DELIVERED))
    status = np.where(cancelled, CANCELLED, status)
    delivery_days = np.where(channel == STORE, 0, 1 + weighted(rng, 7, DELIVERY_DAYS_WEIGHTS, n))
    n_lines = 1 + weighted(rng, 5, LINES_PER_ORDER, n)

    # Order numbers follow the order time within the day.
    by_time = np.argsort(ts, kind="stable")
    day, customer, channel, variant, store, ts, status, delivery_days, n_lines = (
        a[by_time] for a in (day, customer, channel, variant, store, ts, status, delivery_days, n_lines)
    )
    day_first = np.concatenate([[0], np.cumsum(per_day)[:-1]])
    seq = np.arange(n) - day_first[day] + 1

    # ~1 day in 10 gets a second, later sales drop: orders the first extract missed, and new versions
    # (status Shipped -> Delivered) of orders it did deliver.
    second = rng.random(cal.days) < SECOND_DROP_RATE
    if cal.days >= 2 and not second.any():
        second[rng.integers(1, cal.days)] = True
    late_extract = np.zeros(n, dtype=bool)
    updated = np.zeros(n, dtype=bool)
    for d in np.flatnonzero(second):
        lo, hi = int(day_first[d]), int(day_first[d] + per_day[d])
        if hi - lo < 2:
            continue
        k = max(1, int(rng.binomial(hi - lo, 0.04)))
        late_extract[lo + rng.choice(hi - lo, k, replace=False)] = True
        eligible = lo + np.flatnonzero((status[lo:hi] == SHIPPED) & ~late_extract[lo:hi])
        if eligible.size:
            k = max(1, int(rng.binomial(eligible.size, 0.06)))
            updated[rng.choice(eligible, k, replace=False)] = True
    first_status = status.copy()
    status = np.where(updated, DELIVERED, status)

    lines = _build_lines(seed, cal, day, n_lines, delivery_days, status, late_extract, products)
    line_start = np.concatenate([[0], np.cumsum(n_lines)[:-1]])
    total = np.add.reduceat(lines.total, line_start) if n else np.zeros(0, dtype=np.int64)
    orders = Orders(
        day=day,
        seq=seq,
        customer=customer,
        channel=channel,
        variant=variant,
        store=store,
        ts=ts,
        status=status,
        first_status=first_status,
        delivery_days=delivery_days,
        late_extract=late_extract,
        updated=updated,
        line_start=line_start,
        total=total,
        id_width=width_for(int(per_day.max(initial=0)), 5),
    )
    return orders, lines


def _build_lines(seed, cal, o_day, n_lines, delivery_days, status, late_extract, products: Products) -> Lines:
    rng = stream(seed, "lines")
    n_orders = o_day.size
    order = np.repeat(np.arange(n_orders), n_lines)
    n = order.size
    line_start = np.concatenate([[0], np.cumsum(n_lines)[:-1]]).astype(np.int64)
    number = np.arange(n) - line_start[order] + 1
    day = o_day[order]
    product = prefix_choice(rng, products.cum_weight, products.available[day])
    # Price-test products: a line is kept with the product's relative demand at that day's price,
    # else it goes to a product outside the tests.
    drng = stream(seed, "demand")
    moved = np.flatnonzero(drng.random(n) >= products.demand_factor(product, day))
    if moved.size:
        weights = np.diff(np.concatenate([[0.0], products.cum_weight]))
        weights[products.price_tests] = 0.0
        product[moved] = prefix_choice(drng, np.cumsum(weights), products.available[day[moved]])

    # A few popular pairs are often bought together, so basket analysis has something to find.
    n0 = int(products.available[0])
    weights = np.diff(np.concatenate([[0.0], products.cum_weight[:n0]]))
    weights[products.price_tests] = 0.0  # their demand is the price response alone
    pairs = rng.choice(n0, 2 * BUNDLES, replace=False, p=weights / weights.sum()).reshape(BUNDLES, 2)
    bundled = (n_lines >= 2) & (rng.random(n_orders) < BUNDLE_RATE)
    which = rng.integers(0, BUNDLES, n_orders)
    first_line = line_start[bundled]
    product[first_line] = pairs[which[bundled], 0]
    product[first_line + 1] = pairs[which[bundled], 1]

    # unknown_product: mostly a product whose first drop comes 1-5 days later (late-arriving
    # dimension), else an id that never appears in any product drop.
    unknown = rng.random(n) < DIRTY_RATES["sales_returns"]["unknown_product"]
    lo, hi = products.late_arrivals(day)
    late = lo + (rng.random(n) * (hi - lo)).astype(np.int64)
    use_late = unknown & (hi > lo) & (rng.random(n) < 0.9)
    orphan = products.count + rng.integers(0, products.orphans, n)
    product = np.where(use_late, late, np.where(unknown, orphan, product))

    quantity = 1 + weighted(rng, 5, QUANTITY_WEIGHTS, n)
    price = products.price_on(product, day)
    gross = quantity * price
    discounted = rng.random(n) < 0.2
    discount = np.where(discounted, np.rint(gross * rng.uniform(0.10, 0.20, n)).astype(np.int64), 0)
    net = gross - discount
    tax = div_half_even(net * TAX_RATE_PERCENT, 100)
    total = net + tax

    rrng = stream(seed, "returns")
    returnable = status[order] != CANCELLED
    returned = returnable & (rrng.random(n) < RETURN_RATE)
    waits = np.arange(MAX_RETURN_DAYS + 1)
    wait = weighted(rrng, waits.size, (waits + 1) * np.exp(-waits / 5), n)
    lag = np.minimum(delivery_days[order] + wait, MAX_RETURN_DAYS)
    # A line the first extract missed is returned on a later day at the earliest.
    lag = np.where(late_extract[order] & (lag == 0), 1, lag)
    return_day = day + lag
    returned &= return_day < cal.days
    partial = (quantity > 1) & (rrng.random(n) < 0.35)
    return_quantity = np.where(partial, rrng.integers(1, np.maximum(quantity, 2)), quantity)
    return_amount = div_half_even(total * return_quantity, quantity)
    return_reason = weighted(rrng, len(RETURN_REASONS), RETURN_REASON_WEIGHTS, n)
    return Lines(
        order=order,
        number=number,
        product=product,
        unknown=unknown,
        quantity=quantity,
        price=price,
        discount=discount,
        tax=tax,
        total=total,
        returned=returned,
        return_day=return_day,
        return_quantity=return_quantity,
        return_amount=return_amount,
        return_reason=return_reason,
        bundles=pairs,
    )


def _stamp_expr(code: pl.Expr) -> pl.Expr:
    return pl.when(code == 1).then(pl.lit(LATE_SALES_STAMP)).otherwise(pl.lit(REGULAR_STAMP))


def order_ids(cal: Calendar, orders: Orders) -> pl.Expr:
    """Order id text from the `_o_day` (day index) and `_o_seq` columns."""
    return pl.concat_str(
        pl.lit("O"),
        compact_date(pl.col("_o_day") + cal.start_day),
        pl.col("_o_seq").cast(pl.String).str.zfill(orders.id_width),
    )


def sales_rows(
    seed: int, cal: Calendar, orders: Orders, lines: Lines, customers: Customers, products: Products, stores: Stores
):
    """sales_returns rows in delivery order, with `_day` and `_stamp`; and the defect counts."""
    all_lines = np.arange(lines.order.size)
    upd = all_lines[orders.updated[lines.order]]
    ret = all_lines[lines.returned]
    line = np.concatenate([all_lines, upd, ret])
    section = np.concatenate([np.zeros(all_lines.size, np.int64), np.ones(upd.size, np.int64), np.full(ret.size, 2)])
    o = lines.order[line]
    day = np.where(section == 2, lines.return_day[line], orders.day[o])
    stamp = np.where(section == 2, 0, np.where((section == 1) | orders.late_extract[o], 1, 0))
    order = np.lexsort((line, section, stamp, day))
    line, section, o, day, stamp = line[order], section[order], o[order], day[order], stamp[order]
    status = np.where(section == 0, orders.first_status[o], orders.status[o])

    frame = pl.DataFrame(
        {
            "_day": day,
            "_stamp_code": stamp,
            "_section": section,
            "_o_day": orders.day[o],
            "_o_seq": orders.seq[o],
            "_line": lines.number[line],
            "_cust": orders.customer[o],
            "_prod": lines.product[line],
            "_store": orders.store[o],
            "_ts": orders.ts[o],
            "_delivery": orders.day[o] + orders.delivery_days[o] + cal.start_day,
            "_qty": lines.quantity[line],
            "_price": lines.price[line],
            "_disc_c": lines.discount[line],
            "_tax": lines.tax[line],
            "_channel": orders.channel[o] * 4 + orders.variant[o],
            "_status": status,
            "_ret_day": lines.return_day[line] + cal.start_day,
            "_ret_reason": lines.return_reason[line],
            "_ret_qty": lines.return_quantity[line],
            "_ret_amount": lines.return_amount[line],
            "_unknown": lines.unknown[line],
        }
    )
    returned = pl.col("_section") == 2
    frame = frame.with_columns(
        order_ids(cal, orders).alias("order_id"),
        pl.col("_line").cast(pl.String).alias("line_number"),
        customers.ids(pl.col("_cust")).alias("customer_id"),
        products.ids(pl.col("_prod")).alias("product_id"),
        stores.ids(pl.col("_store")).alias("store_id"),
        timestamp(pl.col("_ts")).alias("order_ts"),
        date_text(pl.col("_delivery")).alias("delivery_date"),
        pl.col("_qty").cast(pl.String).alias("quantity"),
        money(pl.col("_price")).alias("unit_price"),
        money(pl.col("_disc_c")).alias("discount_amount"),
        money(pl.col("_tax")).alias("tax_amount"),
        pick(_FLAT_VARIANTS, pl.col("_channel")).alias("sales_channel"),
        pick(ORDER_STATUSES, pl.col("_status")).alias("order_status"),
        pl.when(returned).then(pl.lit("1")).otherwise(pl.lit("0")).alias("is_returned"),
        pl.when(returned).then(date_text(pl.col("_ret_day"))).alias("return_date"),
        pl.when(returned).then(pick(RETURN_REASONS, pl.col("_ret_reason"))).alias("return_reason"),
        pl.when(returned).then(pl.col("_ret_qty").cast(pl.String)).alias("return_quantity"),
        pl.when(returned).then(money(pl.col("_ret_amount"))).alias("return_amount"),
        _stamp_expr(pl.col("_stamp_code")).alias("_stamp"),
    ).select(*SOURCE_COLUMNS["sales_returns"], "_day", "_stamp", "_section", "_unknown", "_disc_c")
    return dirty.sales(frame, stream(seed, "dirty.sales_returns"), DIRTY_RATES["sales_returns"], ("_day", "_stamp"))


# --- payments --------------------------------------------------------------------------------------

_CARD_PREFIXES = {
    "Visa": ("4",),
    "Mastercard": ("51", "52", "53", "54", "55"),
    "Amex": ("34", "37"),
    "Discover": ("6011",),
}
_CARD_LENGTH = {"Visa": 16, "Mastercard": 16, "Amex": 15, "Discover": 16}
CREDIT_BRAND_WEIGHTS = (0.50, 0.30, 0.12, 0.08)
DEBIT_BRAND_WEIGHTS = (0.60, 0.40, 0.0, 0.0)
# Payment type weights (Credit, Debit, PayPal, Gift Card, Cash) by channel: cash only at the till.
_TYPE_WEIGHTS_STORE = (0.45, 0.30, 0.0, 0.05, 0.20)
_TYPE_WEIGHTS_REMOTE = (0.50, 0.25, 0.18, 0.07, 0.0)


def card_numbers(rng: np.random.Generator, brand: np.ndarray) -> np.ndarray:
    """Luhn-valid card numbers (16 digits, Amex 15) for brand indexes into CARD_BRANDS."""
    out = np.empty(brand.size, dtype="U16")
    for b, name in enumerate(CARD_BRANDS):
        where = np.flatnonzero(brand == b)
        if where.size == 0:
            continue
        length = _CARD_LENGTH[name]
        prefixes = _CARD_PREFIXES[name]
        pfx = rng.integers(0, len(prefixes), where.size)
        digits = rng.integers(0, 10, (where.size, length))
        plen = len(prefixes[0])
        for i, p in enumerate(prefixes):
            digits[pfx == i, :plen] = [int(c) for c in p]
        body = digits[:, : length - 1]
        # Luhn: from the right of the full number, every second digit (the body's last first) doubles.
        doubled = ((length - 2 - np.arange(length - 1)) % 2) == 0
        values = np.where(doubled, body * 2, body)
        values = np.where(values > 9, values - 9, values)
        digits[:, length - 1] = (10 - values.sum(axis=1) % 10) % 10
        text = (digits.astype(np.uint8) + 48).view(f"S{length}").ravel().astype(f"U{length}")
        out[where] = text
    return out


def _starts(keys: np.ndarray) -> np.ndarray:
    """True where a run of equal sorted keys begins."""
    return np.concatenate([[True], keys[1:] != keys[:-1]])[: keys.size]


def payment_rows(seed: int, cal: Calendar, orders: Orders, lines: Lines, customers: Customers):
    """payment_refund rows in delivery order, with `_day` and `_stamp`; and the defect counts."""
    rng = stream(seed, "payments")
    crng = stream(seed, "cards")
    n_orders = orders.day.size
    # Each customer owns one credit and one debit card and mostly pays with them.
    credit_brand = weighted(crng, 4, CREDIT_BRAND_WEIGHTS, customers.count)
    debit_brand = weighted(crng, 4, DEBIT_BRAND_WEIGHTS, customers.count)
    credit_number = card_numbers(crng, credit_brand)
    debit_number = card_numbers(crng, debit_brand)

    split = (rng.random(n_orders) < 0.03) & (orders.total >= 1000)
    o = np.repeat(np.arange(n_orders), 1 + split.astype(np.int64))
    part = np.arange(o.size) - np.concatenate([[0], np.cumsum(1 + split.astype(np.int64))[:-1]])[o]
    n = o.size
    first_share = np.rint(orders.total * rng.uniform(0.3, 0.7, n_orders)).astype(np.int64)
    amount = np.where(split[o], np.where(part == 0, first_share[o], orders.total[o] - first_share[o]), orders.total[o])

    ptype = np.where(
        orders.channel[o] == STORE,
        weighted(rng, 5, _TYPE_WEIGHTS_STORE, n),
        weighted(rng, 5, _TYPE_WEIGHTS_REMOTE, n),
    )
    is_card = ptype <= 1
    own_card = rng.random(n) < 0.8
    fresh_brand = np.where(
        ptype == 0, weighted(crng, 4, CREDIT_BRAND_WEIGHTS, n), weighted(crng, 4, DEBIT_BRAND_WEIGHTS, n)
    )
    fresh_number = card_numbers(crng, fresh_brand)
    cust = orders.customer[o]
    brand = np.where(own_card, np.where(ptype == 0, credit_brand[cust], debit_brand[cust]), fresh_brand)
    number = np.where(own_card, np.where(ptype == 0, credit_number[cust], debit_number[cust]), fresh_number)
    number = np.where(is_card, number, "")
    brand = np.where(is_card, brand, -1)
    # Separators as typed at checkout: 0 none, 1 spaces, 2 dashes.
    separator = np.where(rng.random(n) < 0.3, 1 + rng.integers(0, 2, n), 0)
    status = np.where(
        orders.status[o] == CANCELLED, PAYMENT_STATUSES.index("Failed"),
        np.where(rng.random(n) < 0.04, PAYMENT_STATUSES.index("Pending"), PAYMENT_STATUSES.index("Completed")),
    )
    day_end = cal.day_start(orders.day[o]) + DAY_SECONDS - 1
    tx_ts = np.minimum(orders.ts[o] + rng.integers(0, 31, n), day_end)
    pay_day = orders.day[o]
    day_counts = np.bincount(pay_day, minlength=cal.days)
    pay_seq = np.arange(n) - np.concatenate([[0], np.cumsum(day_counts)[:-1]])[pay_day] + 1
    pay_width = width_for(int(day_counts.max(initial=0)), 6)

    # Refunds: the cumulative returned amount of an order, at each day something of it comes back;
    # a split payment is refunded on its first part first.
    r_lines = np.flatnonzero(lines.returned)
    r_order = lines.order[r_lines]
    r_day = lines.return_day[r_lines]
    by = np.lexsort((lines.number[r_lines], r_day, r_order))
    r_lines, r_order, r_day = r_lines[by], r_order[by], r_day[by]
    starts_order = _starts(r_order)
    cum = np.cumsum(lines.return_amount[r_lines])
    order_start = np.maximum.accumulate(np.where(starts_order, np.arange(r_order.size), 0))
    order_cum = cum - np.concatenate([[0], cum])[order_start]
    # One refund state per order and return day: the last line of each (order, day) group.
    last_of_group = np.concatenate([(_starts(r_order) | _starts(r_day))[1:], [True]])[: r_order.size]
    g_order, g_day, g_cum = r_order[last_of_group], r_day[last_of_group], order_cum[last_of_group]
    g_reason = lines.return_reason[r_lines[last_of_group]]
    g_prev = np.where(_starts(g_order), 0, np.concatenate([[0], g_cum[:-1]]))
    first_payment = np.concatenate([[0], np.cumsum(1 + split.astype(np.int64))[:-1]])
    cap = np.where(split[g_order], first_share[g_order], orders.total[g_order])
    p0_now, p0_before = np.minimum(g_cum, cap), np.minimum(g_prev, cap)
    p1_now, p1_before = g_cum - p0_now, g_prev - p0_before
    emit0 = p0_now > p0_before
    emit1 = split[g_order] & (p1_now > p1_before)
    ref_pay = np.concatenate([first_payment[g_order][emit0], first_payment[g_order][emit1] + 1])
    ref_amount = np.concatenate([p0_now[emit0], p1_now[emit1]])
    ref_day = np.concatenate([g_day[emit0], g_day[emit1]])
    ref_reason = np.concatenate([g_reason[emit0], g_reason[emit1]])
    ref_status = np.where(rng.random(ref_pay.size) < 0.85, 0, 1)

    pay = np.concatenate([np.arange(n), ref_pay])
    section = np.concatenate([np.zeros(n, np.int64), np.ones(ref_pay.size, np.int64)])
    day = np.concatenate([pay_day, ref_day])
    refund = np.concatenate([np.zeros(n, np.int64), ref_amount])
    reason = np.concatenate([np.zeros(n, np.int64), ref_reason])
    rstatus = np.concatenate([np.zeros(n, np.int64), ref_status])
    order = np.lexsort((pay, section, day))
    pay, section, day, refund, reason, rstatus = (a[order] for a in (pay, section, day, refund, reason, rstatus))
    po = o[pay]
    frame = pl.DataFrame(
        {
            "_day": day,
            "_section": section,
            "_pay_day": pay_day[pay] + cal.start_day,
            "_pay_seq": pay_seq[pay],
            "_o_day": orders.day[po],
            "_o_seq": orders.seq[po],
            "_type": ptype[pay],
            "_brand": brand[pay],
            "_number": number[pay],
            "_sep": separator[pay],
            "_amount_c": amount[pay],
            "_status": status[pay],
            "_ts": tx_ts[pay],
            "_refund": refund,
            "_reason": reason,
            "_rstatus": rstatus,
            "_refund_day": day + cal.start_day,
        }
    )
    num = pl.col("_number")
    amex = num.str.len_chars() == 15

    def grouped(sep: str) -> pl.Expr:
        return (
            pl.when(amex)
            .then(pl.concat_str(num.str.slice(0, 4), num.str.slice(4, 6), num.str.slice(10, 5), separator=sep))
            .otherwise(
                pl.concat_str(
                    num.str.slice(0, 4), num.str.slice(4, 4), num.str.slice(8, 4), num.str.slice(12, 4), separator=sep
                )
            )
        )

    refunded = pl.col("_section") == 1
    frame = frame.with_columns(
        pl.concat_str(
            pl.lit("PAY"), compact_date(pl.col("_pay_day")), pl.col("_pay_seq").cast(pl.String).str.zfill(pay_width)
        ).alias("payment_id"),
        order_ids(cal, orders).alias("order_id"),
        pick(PAYMENT_TYPES, pl.col("_type")).alias("payment_type"),
        pl.when(pl.col("_brand") >= 0).then(pick(CARD_BRANDS, pl.col("_brand").clip(0))).alias("card_brand"),
        pl.when(pl.col("_brand") < 0)
        .then(None)
        .when(pl.col("_sep") == 1)
        .then(grouped(" "))
        .when(pl.col("_sep") == 2)
        .then(grouped("-"))
        .otherwise(num)
        .alias("card_number"),
        money(pl.col("_amount_c")).alias("amount"),
        pick(PAYMENT_STATUSES, pl.col("_status")).alias("payment_status"),
        timestamp(pl.col("_ts")).alias("transaction_ts"),
        pl.when(refunded).then(pl.lit("1")).otherwise(pl.lit("0")).alias("is_refunded"),
        pl.when(refunded).then(money(pl.col("_refund"))).alias("refund_amount"),
        pl.when(refunded).then(pick(RETURN_REASONS, pl.col("_reason"))).alias("refund_reason"),
        pl.when(refunded).then(pick(REFUND_STATUSES, pl.col("_rstatus"))).alias("refund_status"),
        pl.when(refunded).then(date_text(pl.col("_refund_day"))).alias("refund_date"),
        _stamp_expr(pl.lit(0)).alias("_stamp"),
    ).select(*SOURCE_COLUMNS["payment_refund"], "_day", "_stamp", "_section", "_amount_c")
    rng = stream(seed, "dirty.payment_refund")
    return dirty.payments(frame, rng, DIRTY_RATES["payment_refund"], ("_day", "_stamp"))


# --- loyalty ---------------------------------------------------------------------------------------

LOYALTY_PER_ORDER = 1 / 3


def loyalty_rows(seed: int, cal: Calendar, orders: Orders, customers: Customers):
    rng = stream(seed, "loyalty")
    n_orders = orders.day.size
    picked = np.flatnonzero((orders.status != CANCELLED) & (rng.random(n_orders) < LOYALTY_PER_ORDER))
    n = picked.size
    day = orders.day[picked]
    ts = np.minimum(orders.ts[picked] + rng.integers(60, 900, n), cal.day_start(day) + DAY_SECONDS - 1)
    kind = weighted(rng, len(LOYALTY_EVENT_TYPES), LOYALTY_EVENT_WEIGHTS, n)
    earned = np.where(
        kind == 0,
        np.maximum(1, orders.total[picked] // 100),
        np.where(kind == 2, rng.choice(np.array([50, 100, 250, 500]), n), 0),
    )
    redeemed = np.where(
        kind == 1,
        100 * rng.integers(1, 11, n),
        np.where(kind == 3, rng.choice(np.array([50, 100, 200, 500]), n), 0),
    )
    order = np.lexsort((picked, ts))
    picked, day, ts, kind, earned, redeemed = (a[order] for a in (picked, day, ts, kind, earned, redeemed))
    day_counts = np.bincount(day, minlength=cal.days)
    seq = np.arange(n) - np.concatenate([[0], np.cumsum(day_counts)[:-1]])[day] + 1
    # Date and number stay under 13 digits, so an event id never looks like a card number to a scanner.
    width = width_for(int(day_counts.max(initial=0)), 4)
    frame = pl.DataFrame(
        {
            "_day": day,
            "_epoch_day": day + cal.start_day,
            "_seq": seq,
            "_cust": orders.customer[picked],
            "_ts": ts,
            "_kind": kind,
            "_earned": earned,
            "_redeemed_points": redeemed,
            "_redeemed": kind % 2 == 1,  # redeem and expire take points away
        }
    ).with_columns(
        pl.concat_str(
            pl.lit("LOY"), compact_date(pl.col("_epoch_day")), pl.col("_seq").cast(pl.String).str.zfill(width),
            separator="-",
        ).alias("event_id"),
        customers.ids(pl.col("_cust")).alias("customer_id"),
        timestamp(pl.col("_ts")).alias("event_ts"),
        pick(LOYALTY_EVENT_TYPES, pl.col("_kind")).alias("event_type"),
        pl.col("_earned").cast(pl.String).alias("points_earned"),
        pl.col("_redeemed_points").cast(pl.String).alias("points_redeemed"),
        _stamp_expr(pl.lit(0)).alias("_stamp"),
    )
    return dirty.loyalty(frame, stream(seed, "dirty.loyalty"), DIRTY_RATES["loyalty"], ("_day", "_stamp"))
