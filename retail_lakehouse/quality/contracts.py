"""pandera contracts for every silver and gold table, built on the column contracts the transforms
produce (`retail_lakehouse.contracts`, `gold.star.GOLD_SCHEMAS`) so no type is written twice.
"""

import pandera.polars as pa

from retail_lakehouse import contracts as c
from retail_lakehouse.gold.customer360 import CUSTOMER_360_SCHEMA
from retail_lakehouse.gold.star import GOLD_SCHEMAS
from retail_lakehouse.silver.rules import AGE_GROUPS, CHANNELS, GENDERS

CHANNEL_VALUES = sorted(set(CHANNELS.values()))
NON_NEGATIVE = pa.Check.ge(0)

# Per table: required (non-null) columns, checks per column, unique key columns.
_RULES: dict[tuple[str, str], dict] = {
    ("silver", "customer"): {
        "required": ["customer_id", "email", "created_at", "updated_at"],
        "checks": {
            "email": [pa.Check.str_matches(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")],
            "age_group": [pa.Check.isin(AGE_GROUPS)],
            "gender": [pa.Check.isin(GENDERS)],
            "data_quality_score": [pa.Check.in_range(0.0, 1.0)],
        },
        "unique": ["customer_id"],
    },
    ("silver", "product"): {
        "required": ["product_id", "cost", "list_price"],
        "checks": {"cost": [NON_NEGATIVE], "list_price": [NON_NEGATIVE]},
        "unique": ["product_id"],
    },
    ("silver", "store"): {"required": ["store_id"], "checks": {"square_footage": [NON_NEGATIVE]}, "unique": ["store_id"]},
    ("silver", "sales"): {
        "required": ["order_id", "line_number", "customer_id", "product_id", "order_ts", "order_date", "quantity",
                     "unit_price", "discount_amount", "tax_amount", "sales_total", "sales_channel", "is_returned"],
        "checks": {
            "quantity": [pa.Check.gt(0)],
            **{m: [NON_NEGATIVE] for m in ("unit_price", "discount_amount", "tax_amount", "return_amount")},
            "return_quantity": [pa.Check.gt(0)],
            "sales_channel": [pa.Check.isin(CHANNEL_VALUES)],
        },
        "unique": ["order_id", "line_number"],
    },
    ("silver", "payment"): {
        "required": ["payment_id", "order_id", "amount", "transaction_ts", "transaction_date", "is_refunded"],
        "checks": {"amount": [NON_NEGATIVE], "refund_amount": [NON_NEGATIVE]},
        "unique": ["payment_id"],
    },
    ("silver", "inventory"): {
        "required": ["snapshot_date", "store_id", "product_id", "quantity_on_hand", "reorder_point"],
        "checks": {"quantity_on_hand": [NON_NEGATIVE], "reorder_point": [NON_NEGATIVE]},
        "unique": ["snapshot_date", "store_id", "product_id"],
    },
    ("silver", "loyalty"): {
        "required": ["event_id", "customer_id", "event_ts"],
        "checks": {"points_earned": [NON_NEGATIVE], "points_redeemed": [NON_NEGATIVE]},
        "unique": ["event_id"],
    },
    ("gold", "dim_customer"): {"required": ["customer_key", "customer_id", "valid_from", "is_current"], "unique": ["customer_key"]},
    ("gold", "dim_product"): {"required": ["product_key", "product_id", "valid_from", "is_current"], "unique": ["product_key"]},
    ("gold", "dim_store"): {"required": ["store_key", "store_id"], "unique": ["store_key"]},
    ("gold", "dim_date"): {"required": ["date_key", "date"], "unique": ["date"]},
    ("gold", "fact_sales"): {
        "required": ["sales_id", "order_id", "line_number", "customer_key", "product_key", "order_date", "quantity",
                     "unit_price", "sales_total", "sales_channel", "load_timestamp"],
        "checks": {"quantity": [pa.Check.gt(0)], "unit_price": [NON_NEGATIVE], "sales_channel": [pa.Check.isin(CHANNEL_VALUES)]},
        "unique": ["sales_id"],
    },
    ("gold", "fact_payment"): {
        "required": ["payment_id", "order_id", "amount", "transaction_date"],
        "checks": {"amount": [NON_NEGATIVE], "refund_amount": [NON_NEGATIVE]},
        "unique": ["payment_id"],
    },
    ("gold", "agg_daily_sales"): {
        "required": ["sales_date", "sales_channel", "total_revenue", "total_orders", "total_lines"],
        "checks": {"total_lines": [pa.Check.gt(0)], "sales_channel": [pa.Check.isin(CHANNEL_VALUES)]},
        "unique": ["sales_date", "sales_channel"],
    },
    ("gold", "sales_performance"): {"required": ["sales_date", "sales_channel"], "unique": ["sales_date", "sales_channel"]},
    ("gold", "customer_lifetime_value"): {"required": ["customer_id", "lifetime_value"], "unique": ["customer_id"]},
    ("gold", "product_return_analysis"): {"required": ["product_id"], "unique": ["product_id"]},
    ("gold", "customer_360"): {
        "required": ["customer_id", "total_transactions", "rfm_segment"],
        "checks": {"rfm_segment": [pa.Check.isin(["Champion", "Loyal", "At Risk", "Potential"])], "total_points_earned": [NON_NEGATIVE]},
        "unique": ["customer_id"],
    },
}

_SILVER_TYPES = {
    "customer": c.SILVER_CUSTOMER, "product": c.SILVER_PRODUCT, "store": c.SILVER_STORE, "sales": c.SILVER_SALES,
    "payment": c.SILVER_PAYMENT, "inventory": c.SILVER_INVENTORY, "loyalty": c.SILVER_LOYALTY,
}


def _types(layer: str, table: str) -> dict:
    if layer == "silver":
        return _SILVER_TYPES[table]
    return CUSTOMER_360_SCHEMA if table == "customer_360" else GOLD_SCHEMAS[table]


def schema_for(layer: str, table: str) -> pa.DataFrameSchema:
    rules = _RULES[(layer, table)]
    required = set(rules.get("required", ()))
    unique = rules.get("unique", [])
    columns = {
        name: pa.Column(
            dtype,
            checks=rules.get("checks", {}).get(name, []),
            nullable=name not in required,
            # One unique column is a column rule; a composite key is a frame rule below.
            unique=unique == [name],
        )
        for name, dtype in _types(layer, table).items()
    }
    return pa.DataFrameSchema(
        columns, strict=True, ordered=True, unique=unique if len(unique) > 1 else None, name=f"{layer}/{table}"
    )


SCHEMAS = {key: schema_for(*key) for key in _RULES}
