"""The silver column contracts as plain Polars dicts, derived from the table catalog.

Kept so that existing imports keep working; new code calls `retail_lakehouse.catalog.schema(...)`.
"""

from retail_lakehouse.catalog import LINEAGE, MONEY, QUARANTINE_EXTRA, TIMESTAMP, schema

SILVER_CUSTOMER = schema("silver", "customer")
SILVER_PRODUCT = schema("silver", "product")
SILVER_STORE = schema("silver", "store")
SILVER_SALES = schema("silver", "sales")
SILVER_PAYMENT = schema("silver", "payment")
SILVER_INVENTORY = schema("silver", "inventory")
SILVER_LOYALTY = schema("silver", "loyalty")

__all__ = [
    "LINEAGE", "MONEY", "QUARANTINE_EXTRA", "TIMESTAMP",
    "SILVER_CUSTOMER", "SILVER_PRODUCT", "SILVER_STORE", "SILVER_SALES", "SILVER_PAYMENT", "SILVER_INVENTORY", "SILVER_LOYALTY",
]
