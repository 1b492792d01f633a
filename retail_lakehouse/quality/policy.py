"""The quality policy at a glance: every check, on which table, how severe, with which limits.

ERROR checks are blocking: when one fails, Dagster does not run the assets downstream of the
checked one in that run (seed 000 §3.1: bad data never reaches gold). WARN checks report drift.
"""

import datetime as dt
from dataclasses import dataclass

import dagster as dg

# A partition whose quarantined share of bronze rows exceeds this fails its blocking check.
QUARANTINE_LIMIT = 0.05
# ... once it holds this many bronze rows: one bad row in a 15-row inventory day is noise, not a
# broken feed, so smaller partitions are only reported (by the WARN check).
QUARANTINE_MIN_ROWS = 100
# Facts pointing at the unknown member (−1), e.g. a product delivered days after its first sale:
# counted always; a WARN failure above the first share, a blocking ERROR above the second.
ORPHAN_WARN_SHARE = 0.05
ORPHAN_ERROR_SHARE = 0.10
# Seed 000 §8.2: data freshness SLA.
FRESHNESS_WARN = dt.timedelta(hours=24)
FRESHNESS_FAIL = dt.timedelta(hours=30)
# Rows of a failing check shown in its metadata.
SAMPLE_ROWS = 10

CONTRACT = "contract"  # pandera schema: columns, types, nullability, ranges, allowed values, keys
CONSERVATION = "bronze_rows_accounted_for"  # bronze = silver + quarantine + superseded
QUARANTINE_WITHIN_LIMIT = "quarantine_within_limit"
QUARANTINE_SHARE = "quarantine_share"
REVENUE_RECONCILES = "revenue_reconciles_with_fact_sales"
ORPHAN_KEYS = "orphan_dimension_keys"
REFUNDS_WITHIN_PAYMENTS = "refunds_within_payments"
SCD2_INTERVALS = "scd2_intervals_valid"
PARTITION_FRESHNESS = "newest_partition_fresh"


@dataclass(frozen=True)
class Check:
    name: str
    blocking: bool
    description: str

    @property
    def severity(self) -> dg.AssetCheckSeverity:
        return dg.AssetCheckSeverity.ERROR if self.blocking else dg.AssetCheckSeverity.WARN


_CONTRACT = Check(CONTRACT, True, "Columns, types, nullability, ranges, allowed values and key uniqueness (pandera).")
_SILVER = (
    _CONTRACT,
    Check(CONSERVATION, True, "For every drop date: bronze rows = silver + quarantined + superseded rows."),
    Check(QUARANTINE_WITHIN_LIMIT, True, f"Quarantined share of the partition's bronze rows ≤ {QUARANTINE_LIMIT:.0%} (from {QUARANTINE_MIN_ROWS} rows)."),
    Check(QUARANTINE_SHARE, False, f"Reports the quarantined share of the partition (warns above {QUARANTINE_LIMIT:.0%})."),
)

POLICY: dict[tuple[str, ...], tuple[Check, ...]] = {
    **{("silver", t): _SILVER for t in ("customer", "product", "store", "sales", "payment", "inventory", "loyalty")},
    ("gold", "dim_customer"): (_CONTRACT, Check(SCD2_INTERVALS, True, "Per customer: no overlapping versions, exactly one current, unique keys.")),
    ("gold", "dim_product"): (_CONTRACT, Check(SCD2_INTERVALS, True, "Per product: no overlapping versions, exactly one current, unique keys.")),
    ("gold", "dim_store"): (_CONTRACT,),
    ("gold", "dim_date"): (_CONTRACT,),
    ("gold", "fact_sales"): (
        _CONTRACT,
        # Blocking, but only an ERROR-severity result blocks: below the error share it warns.
        Check(ORPHAN_KEYS, True, f"Facts on the unknown member (−1): warns above {ORPHAN_WARN_SHARE:.0%}, blocks above {ORPHAN_ERROR_SHARE:.0%}."),
    ),
    ("gold", "fact_payment"): (_CONTRACT, Check(REFUNDS_WITHIN_PAYMENTS, True, "No refund exceeds its payment.")),
    ("gold", "agg_daily_sales"): (
        _CONTRACT,
        Check(REVENUE_RECONCILES, True, "Σ fact_sales.sales_total per date and channel = total_revenue, to the cent."),
    ),
    ("gold", "sales_performance"): (_CONTRACT,),
    ("gold", "customer_lifetime_value"): (_CONTRACT,),
    ("gold", "product_return_analysis"): (_CONTRACT,),
    ("gold", "customer_360"): (_CONTRACT,),
}

FRESHNESS_CHECKED = (("gold", "fact_sales"), ("gold", "fact_payment"), ("gold", "agg_daily_sales"))


def checks_for(path: tuple[str, ...]) -> tuple[Check, ...]:
    return POLICY.get(tuple(path), ())


def check_specs_for(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(c.name, asset=key, blocking=c.blocking, description=c.description) for c in checks_for(tuple(key.path))]


def check(path: tuple[str, ...], name: str) -> Check:
    return next(c for c in checks_for(path) if c.name == name)
