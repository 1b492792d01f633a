"""Check evaluations: frames in hand, `dg.AssetCheckResult` out (names and severities from policy).

They run inside the asset step that produced the frame, so a check costs no second read.
"""

import datetime as dt

import dagster as dg
import pandera.polars as pa
import polars as pl

from retail_lakehouse.quality import policy as p
from retail_lakehouse.quality.contracts import SCHEMAS


def _result(path: tuple[str, ...], name: str, passed: bool, metadata: dict) -> dg.AssetCheckResult:
    check = p.check(path, name)
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(list(path)), check_name=name, passed=bool(passed), severity=check.severity, metadata=metadata
    )


def markdown(frame: pl.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * frame.width + "\n"
    return head + "\n".join("| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in frame.iter_rows())


def contract_result(path: tuple[str, ...], frame: pl.DataFrame) -> dg.AssetCheckResult:
    """The table's pandera contract; on failure: counts per rule and a sample of failing rows."""
    try:
        SCHEMAS[tuple(path)].validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        per_rule = cases.group_by("column", "check").agg(pl.len().alias("failures")).sort("failures", descending=True)
        rows = [i for i in cases["index"].drop_nulls().unique().sort().head(p.SAMPLE_ROWS).to_list()]
        sample = frame[rows] if rows else cases.head(p.SAMPLE_ROWS)
        return _result(path, p.CONTRACT, False, {
            "failures": cases.height,
            "failures_per_rule": dg.MetadataValue.md(markdown(per_rule)),
            "sample_failing_rows": dg.MetadataValue.md(markdown(sample)),
        })
    return _result(path, p.CONTRACT, True, {"rows": frame.height})


def conservation_result(path: tuple[str, ...], balance: pl.DataFrame) -> dg.AssetCheckResult:
    bad = balance.filter(~pl.col("balanced"))
    return _result(path, p.CONSERVATION, bad.height == 0, {
        "drop_dates": balance.height,
        "unbalanced_drop_dates": dg.MetadataValue.md(markdown(bad.with_columns(pl.col("drop_date").cast(pl.String)))) if bad.height else "none",
    })


def quarantine_results(
    path: tuple[str, ...], bronze_rows: int, quarantine: pl.DataFrame, limit: float = p.QUARANTINE_LIMIT,
    min_rows: int = p.QUARANTINE_MIN_ROWS,
) -> list[dg.AssetCheckResult]:
    """The partition's quarantined share against the limit, with counts per rule and sample rows."""
    share = quarantine.height / bronze_rows if bronze_rows else 0.0
    per_rule = quarantine.select(pl.col("reject_reasons").explode().alias("rule")).group_by("rule").len().sort("len", descending=True)
    meta = {
        "bronze_rows": bronze_rows,
        "quarantined_rows": quarantine.height,
        "quarantine_share": round(share, 6),
        "limit": limit,
        "rows_per_rule": dg.MetadataValue.md(markdown(per_rule)) if quarantine.height else "none",
        "sample_quarantined_rows": dg.MetadataValue.md(markdown(quarantine.head(p.SAMPLE_ROWS).with_columns(
            pl.col("reject_reasons").list.join(","), pl.col("drop_date").cast(pl.String)))) if quarantine.height else "none",
    }
    return [
        _result(path, p.QUARANTINE_WITHIN_LIMIT, share <= limit or bronze_rows < min_rows, {**meta, "min_rows": min_rows}),
        _result(path, p.QUARANTINE_SHARE, share <= limit, meta),
    ]


def revenue_reconciles_result(fact_sales: pl.DataFrame, agg_daily_sales: pl.DataFrame) -> dg.AssetCheckResult:
    facts = fact_sales.group_by(pl.col("order_date").alias("sales_date"), "sales_channel").agg(pl.col("sales_total").sum().alias("fact_revenue"))
    joined = facts.join(agg_daily_sales.select("sales_date", "sales_channel", "total_revenue"), on=["sales_date", "sales_channel"], how="full", coalesce=True)
    bad = joined.filter(pl.col("fact_revenue").is_null() | pl.col("total_revenue").is_null() | (pl.col("fact_revenue") != pl.col("total_revenue")))
    return _result(("gold", "agg_daily_sales"), p.REVENUE_RECONCILES, bad.height == 0, {
        "groups": joined.height,
        "mismatches": bad.height,
        "sample_mismatches": dg.MetadataValue.md(markdown(bad.head(p.SAMPLE_ROWS).with_columns(pl.col("sales_date").cast(pl.String)))) if bad.height else "none",
    })


def orphans_result(
    fact_sales: pl.DataFrame, warn_share: float = p.ORPHAN_WARN_SHARE, error_share: float = p.ORPHAN_ERROR_SHARE
) -> dg.AssetCheckResult:
    """Unknown-member facts: counted; a WARN failure above `warn_share`, a blocking ERROR above `error_share`."""
    orphans = fact_sales.filter((pl.col("customer_key") == -1) | (pl.col("product_key") == -1))
    share = orphans.height / fact_sales.height if fact_sales.height else 0.0
    severity = dg.AssetCheckSeverity.ERROR if share > error_share else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(["gold", "fact_sales"]), check_name=p.ORPHAN_KEYS, passed=share <= warn_share, severity=severity,
        metadata={
            "orphan_facts": orphans.height,
            "unknown_customer": int((fact_sales["customer_key"] == -1).sum()),
            "unknown_product": int((fact_sales["product_key"] == -1).sum()),
            "orphan_share": round(share, 6),
            "warn_above_share": warn_share,
            "error_above_share": error_share,
        },
    )


def refunds_within_payments_result(fact_payment: pl.DataFrame) -> dg.AssetCheckResult:
    bad = fact_payment.filter(pl.col("refund_amount") > pl.col("amount"))
    return _result(("gold", "fact_payment"), p.REFUNDS_WITHIN_PAYMENTS, bad.height == 0, {
        "payments": fact_payment.height,
        "refund_exceeds_payment": bad.height,
        "sample": dg.MetadataValue.md(markdown(bad.select("payment_id", "amount", "refund_amount").head(p.SAMPLE_ROWS))) if bad.height else "none",
    })


def scd2_intervals_result(path: tuple[str, ...], dim: pl.DataFrame, natural_key: str, surrogate_key: str) -> dg.AssetCheckResult:
    versions = dim.sort(natural_key, "valid_from").with_columns(
        pl.col("valid_from").shift(-1).over(natural_key).alias("__next_from")
    )
    overlapping = versions.filter(pl.col("__next_from").is_not_null() & (pl.col("valid_to").is_null() | (pl.col("valid_to") > pl.col("__next_from"))))
    inconsistent = dim.filter(pl.col("valid_to").is_null() != pl.col("is_current"))
    current = dim.group_by(natural_key).agg(pl.col("is_current").sum().alias("current")).filter(pl.col("current") != 1)
    duplicate_keys = dim.height - dim[surrogate_key].n_unique()
    passed = overlapping.height == 0 and inconsistent.height == 0 and current.height == 0 and duplicate_keys == 0
    return _result(path, p.SCD2_INTERVALS, passed, {
        "overlapping_versions": overlapping.height,
        "current_flag_inconsistent": inconsistent.height,
        "keys_without_exactly_one_current": current.height,
        "duplicate_surrogate_keys": duplicate_keys,
        "sample_keys": ", ".join(str(k) for k in pl.concat([overlapping.select(natural_key), current.select(natural_key)])[natural_key].head(p.SAMPLE_ROWS).to_list()) or "none",
    })


def partition_freshness_result(path: tuple[str, ...], newest: dt.date | None, now: dt.datetime) -> dg.AssetCheckResult:
    """Seed 000 §3.2 and §8.2: the newest partition's data is complete at the end of its day; it
    goes stale (WARN) 24 h after that and breaches the SLA (ERROR) after 30 h."""
    age = None if newest is None else now - dt.datetime.combine(newest + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    stale = age is None or age > p.FRESHNESS_WARN
    breached = age is None or age > p.FRESHNESS_FAIL
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(list(path)), check_name=p.PARTITION_FRESHNESS, passed=not stale,
        severity=dg.AssetCheckSeverity.ERROR if breached else dg.AssetCheckSeverity.WARN,
        metadata={
            "newest_partition": str(newest),
            "hours_since_partition_end": -1.0 if age is None else round(age.total_seconds() / 3600, 2),
            "warn_after_hours": p.FRESHNESS_WARN.total_seconds() / 3600,
            "fail_after_hours": p.FRESHNESS_FAIL.total_seconds() / 3600,
            "evaluated_at": now.isoformat(),
        },
    )
