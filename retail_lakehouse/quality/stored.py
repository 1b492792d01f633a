"""Contract checks that read the stored table, for tables no asset step writes.

`gold/pos_ledger` is an external asset, merged into by the `gold/inventory_positions` step of POS
stream runs, so no step of its own yields its contract result; this check reads the Delta table
and validates it instead.
Which tables get one is the catalog's `standalone` contract declaration.
"""

import dagster as dg

from retail_lakehouse.quality import policy as p
from retail_lakehouse.quality.checks import contract_result
from retail_lakehouse.storage import Lakehouse


def build_stored_contract_checks() -> list[dg.AssetChecksDefinition]:
    return [
        _stored_contract_check(path, check)
        for path, standalone in p.STANDALONE.items()
        for check in standalone
        if check.name == p.CONTRACT
    ]


def _stored_contract_check(path: tuple[str, ...], check: p.Check) -> dg.AssetChecksDefinition:
    key = dg.AssetKey(list(path))

    @dg.asset_check(asset=key, name=check.name, blocking=check.blocking, description=check.description)
    def _contract(lake: Lakehouse) -> dg.AssetCheckResult:
        if not lake.exists(key):
            return dg.AssetCheckResult(
                asset_key=key, check_name=check.name, passed=True, severity=check.severity, metadata={"rows": 0, "table": "not written yet"}
            )
        return contract_result(path, lake.read(key)).result

    return _contract
