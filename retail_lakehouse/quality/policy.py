"""The quality policy as Dagster sees it: every check, on which table, how severe, with which limits.

Which table has which check, and whether it blocks, is declared in the table's catalog entry
(`retail_lakehouse.catalog`); this module turns those declarations into Dagster check specs and
severities. ERROR checks are blocking: when one fails, Dagster does not run the assets downstream of
the checked one in that run (seed 000 §3.1: bad data never reaches gold). WARN checks report drift.
"""

import datetime as dt
from dataclasses import dataclass, fields

import dagster as dg

from retail_lakehouse import catalog
from retail_lakehouse.catalog import (  # noqa: F401  (the check names and limits, re-exported)
    CONSERVATION,
    CONTRACT,
    DROPS_LOADED,
    BEATS_SEASONAL_NAIVE,
    LOW_STOCK,
    ORPHAN_ERROR_SHARE,
    ORPHAN_KEYS,
    ORPHAN_WARN_SHARE,
    PARTITION_FRESHNESS,
    QUARANTINE_LIMIT,
    GATE_CONFIDENCE,
    QUARANTINE_SHARE,
    QUARANTINE_WITHIN_LIMIT,
    REFUNDS_WITHIN_PAYMENTS,
    REVENUE_RECONCILES,
    SCD2_INTERVALS,
)

FRESHNESS_WARN = dt.timedelta(hours=catalog.FRESHNESS_WARN_HOURS)
FRESHNESS_FAIL = dt.timedelta(hours=catalog.FRESHNESS_FAIL_HOURS)
# Rows of a failing check shown in its metadata.
SAMPLE_ROWS = 10


@dataclass(frozen=True)
class Check(catalog.Check):
    @property
    def severity(self) -> dg.AssetCheckSeverity:
        return dg.AssetCheckSeverity.ERROR if self.blocking else dg.AssetCheckSeverity.WARN


def _dagster(check: catalog.Check) -> Check:
    return Check(**{f.name: getattr(check, f.name) for f in fields(check)})


# Checks evaluated in the step that writes the table: they become the asset's check specs.
POLICY: dict[tuple[str, ...], tuple[Check, ...]] = {
    t.key: tuple(_dagster(c) for c in t.checks if not c.standalone)
    for t in catalog.tables()
    if any(not c.standalone for c in t.checks)
}
# Checks that read the stored table on their own (freshness on a schedule; the ledger's contract).
STANDALONE: dict[tuple[str, ...], tuple[Check, ...]] = {
    t.key: tuple(_dagster(c) for c in t.checks if c.standalone)
    for t in catalog.tables()
    if any(c.standalone for c in t.checks)
}

FRESHNESS_CHECKED = tuple(t.key for t in catalog.tables(check=PARTITION_FRESHNESS))


def checks_for(path: tuple[str, ...]) -> tuple[Check, ...]:
    return POLICY.get(tuple(path), ())


def check_specs_for(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(c.name, asset=key, blocking=c.blocking, description=c.description) for c in checks_for(tuple(key.path))]


def check(path: tuple[str, ...], name: str) -> Check:
    return next(c for c in (*checks_for(path), *STANDALONE.get(tuple(path), ())) if c.name == name)


def limits(path: tuple[str, ...], name: str) -> dict[str, float]:
    """The limits a table's check is declared with, e.g. `limits(("silver", "sales"), QUARANTINE_WITHIN_LIMIT)`."""
    return dict(check(path, name).limits)
