"""Column contracts of the silver tables: names, order and Polars types (SPEC §3, §4).

The silver transforms produce exactly these schemas and the gold transforms consume them; the
quality checks validate against them. Money is Decimal(18, 2), timestamps are UTC, flags are
booleans.
"""

import polars as pl

MONEY = pl.Decimal(18, 2)
TIMESTAMP = pl.Datetime("us", "UTC")

# Lineage of the winning (or rejected) bronze row: file, 1-based row in it, its drop's date.
LINEAGE = {"_source_file": pl.String, "_row_number": pl.Int64, "drop_date": pl.Date}

SILVER_CUSTOMER = {
    "customer_id": pl.String,
    "name": pl.String,
    "email": pl.String,
    "phone": pl.String,
    "gender": pl.String,
    "age_group": pl.String,
    "city": pl.String,
    "state": pl.String,
    "postal_code": pl.String,
    "country": pl.String,
    "customer_segment": pl.String,
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
    "data_quality_score": pl.Float64,
    **LINEAGE,
}

SILVER_PRODUCT = {
    "product_id": pl.String,
    "sku": pl.String,
    "name": pl.String,
    "category": pl.String,
    "subcategory": pl.String,
    "brand": pl.String,
    "supplier_id": pl.String,
    "cost": MONEY,
    "list_price": MONEY,
    "updated_at": TIMESTAMP,
    **LINEAGE,
}

SILVER_STORE = {
    "store_id": pl.String,
    "name": pl.String,
    "region": pl.String,
    "format": pl.String,
    "square_footage": pl.Int64,
    "opened_date": pl.Date,
    **LINEAGE,
}

SILVER_SALES = {
    "order_id": pl.String,
    "line_number": pl.Int32,
    "customer_id": pl.String,
    "product_id": pl.String,
    "store_id": pl.String,
    "order_ts": TIMESTAMP,
    "order_date": pl.Date,
    "delivery_date": pl.Date,
    "quantity": pl.Int32,
    "unit_price": MONEY,
    "discount_amount": MONEY,
    "tax_amount": MONEY,
    "sales_total": MONEY,
    "sales_channel": pl.String,
    "order_status": pl.String,
    "is_returned": pl.Boolean,
    "return_date": pl.Date,
    "return_reason": pl.String,
    "return_quantity": pl.Int32,
    "return_amount": MONEY,
    **LINEAGE,
}

SILVER_PAYMENT = {
    "payment_id": pl.String,
    "order_id": pl.String,
    "payment_type": pl.String,
    "card_brand": pl.String,
    "card_token": pl.String,
    "card_last4": pl.String,
    "amount": MONEY,
    "payment_status": pl.String,
    "transaction_ts": TIMESTAMP,
    "transaction_date": pl.Date,
    "is_refunded": pl.Boolean,
    "refund_amount": MONEY,
    "refund_reason": pl.String,
    "refund_status": pl.String,
    "refund_date": pl.Date,
    **LINEAGE,
}

SILVER_INVENTORY = {
    "snapshot_date": pl.Date,
    "store_id": pl.String,
    "product_id": pl.String,
    "quantity_on_hand": pl.Int64,
    "reorder_point": pl.Int64,
    **LINEAGE,
}

SILVER_LOYALTY = {
    "event_id": pl.String,
    "customer_id": pl.String,
    "event_ts": TIMESTAMP,
    "event_type": pl.String,
    "points_earned": pl.Int64,
    "points_redeemed": pl.Int64,
    **LINEAGE,
}

# A quarantine table keeps the rejected bronze row's original text columns, then these.
QUARANTINE_EXTRA = {"reject_reasons": pl.List(pl.String), **LINEAGE}
