"""The sources of the landing zone and their columns (SPEC §2): the one definition, shared by the
readers and the data generator (which stays free of Dagster).
"""

# Columns of each CSV source, in delivery order.
SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customer": (
        "customer_id", "name", "email", "phone", "gender", "age_group", "city", "state",
        "postal_code", "country", "customer_segment", "created_at", "updated_at",
    ),
    "product": (
        "product_id", "sku", "name", "category", "subcategory", "brand", "supplier_id", "cost",
        "list_price", "updated_at",
    ),
    "store": ("store_id", "name", "region", "format", "square_footage", "opened_date"),
    "sales_returns": (
        "order_id", "line_number", "customer_id", "product_id", "store_id", "order_ts",
        "delivery_date", "quantity", "unit_price", "discount_amount", "tax_amount", "sales_channel",
        "order_status", "is_returned", "return_date", "return_reason", "return_quantity",
        "return_amount",
    ),
    "payment_refund": (
        "payment_id", "order_id", "payment_type", "card_brand", "card_number", "amount",
        "payment_status", "transaction_ts", "is_refunded", "refund_amount", "refund_reason",
        "refund_status", "refund_date",
    ),
    "inventory": ("snapshot_date", "store_id", "product_id", "quantity_on_hand", "reorder_point"),
    "loyalty": ("event_id", "customer_id", "event_ts", "event_type", "points_earned", "points_redeemed"),
}
# Streaming POS micro-batches (JSON Lines), seed 004's hot path.
POS_COLUMNS: tuple[str, ...] = ("event_id", "event_ts", "store_id", "product_id", "quantity")
ALL_SOURCES: tuple[str, ...] = (*SOURCE_COLUMNS, "pos_events")

# Sources that must deliver a drop every day; a missing one fails its partition. Stores change
# rarely and arrive only when they do.
DAILY_SOURCES = frozenset({"customer", "product", "sales_returns", "payment_refund", "inventory", "loyalty"})
