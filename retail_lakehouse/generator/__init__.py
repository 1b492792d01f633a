"""Synthetic landing zone for the retail lakehouse (SPEC §2): `python -m retail_lakehouse.generator`.

`generate(out, start, days, seed, scale)` writes, for business dates start .. start + days - 1:

- `<source>/<source>_YYYYMMDD_230000.csv` for customer, product, sales_returns, payment_refund,
  inventory and loyalty every day (customer and product hold only that day's new and changed
  records, possibly none), and for store on day 0 and on the rare days a store opens or changes;
- `sales_returns/sales_returns_YYYYMMDD_233000.csv` on about one day in ten: orders the first
  extract missed, and new versions (status Shipped -> Delivered) of orders it delivered, so the
  later drop must win;
- `pos_events/pos_events_YYYYMMDD_hhmmss_<seq>.jsonl`, four micro-batches a day (060000, 120000,
  180000, 235959; seq 0001-0004), each holding the events of the six hours up to its stamp;
- `<source>/<source>_YYYYMMDD_235000.csv`: malformed extra drops (see below). The regular drop of
  that day is still there and loads on its own.

Same arguments, byte-identical files; every draw comes from `numpy.random.default_rng` streams
derived from the seed.

Planted signals
---------------
What the gold analytics must recover, named in `GenerationSummary.signals`:
- bundles: six product pairs replace the first two lines of 20% of multi-line orders;
- price tests (`PRICE_TEST_*` in reference.py): six products of $10 or more change price every 3
  days to 75-130% of their first price, and a line stays on one with probability proportional to
  (price / first price) ** elasticity (−2.5, −1.0, −0.25), else moves to another product;
- demand: weekend uplift 1.3 (Friday-Sunday) and a linear trend of +20% a year;
- churn: 25% of customers stop buying for good on a day at least 14 days after they exist (their
  orders go to other customers).

Dirty data
----------
`DIRTY_RATES[source][kind]` is the probability that one eligible row gets the defect; each kind is
drawn independently, except that kinds touching the same field are disjoint, so every defect stays
countable in the files. `GenerationSummary.dirty` holds the rows that got each one. A row's first
delivery is eligible unless noted; change rows (returns, refunds, updates) repeat the source's true
values. `duplicate_row` is eligible on every row of its source: the row is delivered twice in a row,
byte for byte (counts are of rows before duplication).

customer
  null_customer_id       customer_id empty.
  null_email             email empty.
  malformed_email        email without "@", without domain ("x@"), without top-level domain
                         ("x@example"), with "@@", or with a space inside: invalid even after
                         trimming and lower-casing.
  email_case_whitespace  email with upper case and/or surrounding spaces ("  John.Doe12@Example.COM ");
                         valid once trimmed and lower-cased.
  invalid_age_group      a value outside {18-25, 26-35, 36-45, 46-55, 56-65, 65+} ("17-", "unknown", ...).
  invalid_gender         a value outside {M, F, Other, Prefer not to say} ("X", "male", ...).
  messy_phone            the clean "555-123-4567" written as "(555) 123-4567", "+1 555.123.4567",
                         "555.123.4567", "555 123 4567" or " 555-123-4567 ".
  messy_postal_code      the clean 5 digits padded with spaces, split by a space, followed by "." or
                         ",", preceded by "#", or with a letter "o" for a zero (" 9021o ").
  messy_name             the clean "First Last" upper-cased, lower-cased, with extra spaces, or
                         mixed case.
  duplicate_email        eligible: each customer's first version. The customer reuses the email of a
                         customer created earlier; every later version of it repeats that email.
  malformed_timestamp    created_at or updated_at unparseable ("2026/09/01 25:61", "yesterday",
                         "2026-13-45 99:00:00", "0000-00-00 00:00:00", "31/02/2026 10:00", "N/A").
  duplicate_row          see above.
product
  null_product_id        eligible: price-change versions only, so the product's earlier version
                         stands (a blanked first version would orphan every sale of the product).
  negative_price         cost or list_price negative.
  duplicate_row          see above.
sales_returns
  null_key               customer_id or product_id empty (customer_id on unknown-product lines).
  negative_quantity      quantity negative; the money columns keep the true amounts.
  unknown_product        a product id in no product drop dated on or before the order date: 90% of
                         the time (when one exists) a product whose first drop comes 1-5 days later
                         (late-arriving dimension), otherwise an id that never appears. Drawn per
                         line; the line's return repeats the id.
  malformed_timestamp    order_ts unparseable (same variants as customer).
  empty_discount_or_tax  eligible: lines without a discount. discount_amount empty, which means 0.
                         The tax is never zero, so it is never blanked.
  duplicate_row          see above.
payment_refund
  null_order_id          order_id empty.
  malformed_timestamp    transaction_ts unparseable.
  refund_exceeds_amount  eligible: refund rows (is_refunded=1). refund_amount above amount.
  duplicate_row          see above.
inventory
  negative_quantity      quantity_on_hand negative.
loyalty
  null_customer_id       customer_id empty.
  negative_points        the event's points (points_earned, or points_redeemed for redeem and
                         expire) negative.

Malformed files
---------------
`MALFORMED_KINDS`, each as an extra 235000 drop of a seed-chosen source (never store) and day,
about once per kind per 30 days and at least once when the window has 4 days or more (none below):
wrong_header (a column renamed, e.g. customer_id -> customerid, or missing from header and rows),
wrong_delimiter (semicolons), not_utf8 (cp1252 bytes, e.g. 0xFC for the "ü" of "Müller"),
truncated (cut inside a data record: no final line break, the last record has fewer fields than
the header). `GenerationSummary.malformed` maps each one's path to its kind.
"""

from retail_lakehouse.generator.core import GenerationSummary, generate
from retail_lakehouse.generator.reference import (
    CHANNEL_VARIANTS,
    CSV_SOURCES,
    DIRTY_RATES,
    MALFORMED_KINDS,
    POS_BATCH_STAMPS,
)
from retail_lakehouse.sources import POS_COLUMNS, SOURCE_COLUMNS

__all__ = [
    "CHANNEL_VARIANTS",
    "CSV_SOURCES",
    "DIRTY_RATES",
    "MALFORMED_KINDS",
    "POS_BATCH_STAMPS",
    "POS_COLUMNS",
    "SOURCE_COLUMNS",
    "GenerationSummary",
    "generate",
]
