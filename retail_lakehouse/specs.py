"""The catalog as the Dagster UI shows it: description, owners, tags and metadata of each table.

`asset_attrs(key)` is splatted into `@dg.asset`, `dg.AssetOut` or `dg.AssetSpec`, so every asset
carries its catalog entry: the grain as the first sentence of its description, the column schema
with types and constraints, the column lineage where the catalog knows it, the table name, the partition column the I/O manager writes by, owners
and tags (layer, domain, data classification).
"""

from collections.abc import Sequence

import dagster as dg
import polars as pl

from retail_lakehouse import catalog
from retail_lakehouse.storage import COLUMN_LINEAGE, PARTITION_COLUMN


def type_name(dtype: pl.DataType | type[pl.DataType]) -> str:
    """A Polars type as the UI shows it: `Decimal(18, 2)`, `Datetime(us, UTC)`, `List(String)`."""
    if isinstance(dtype, pl.Decimal):
        return f"Decimal({dtype.precision}, {dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        return f"Datetime({dtype.time_unit}, {dtype.time_zone})" if dtype.time_zone else f"Datetime({dtype.time_unit})"
    if isinstance(dtype, pl.List):
        return f"List({type_name(dtype.inner)})"
    return str(dtype)


def column_schema(key: dg.AssetKey | Sequence[str] | str) -> dg.TableSchema:
    entry = catalog.table(key)
    single_key = entry.unique[0] if len(entry.unique) == 1 else None
    columns = [
        dg.TableColumn(
            name=col.name,
            type=type_name(col.dtype),
            description=col.doc or None,
            constraints=dg.TableColumnConstraints(nullable=not col.required, unique=col.name == single_key, other=col.rules()),
        )
        for col in entry.columns
    ]
    composite = [f"unique ({', '.join(entry.unique)})"] if len(entry.unique) > 1 else []
    return dg.TableSchema(columns=columns, constraints=dg.TableConstraints(other=composite) if composite else None)


def column_lineage(key: dg.AssetKey | Sequence[str] | str) -> dg.TableColumnLineage | None:
    """Each column's upstream columns: those it declares, else the same-named column of the tables
    it is derived from."""
    entry = catalog.table(key)
    sources = [catalog.table(path) for path in entry.derived_from]
    deps: dict[str, list[dg.TableColumnDep]] = {}
    for col in entry.columns:
        refs = [tuple(ref.rsplit(".", 1)) for ref in col.lineage] or [(s.path, col.name) for s in sources if col.name in s.column_names]
        for path, name in refs:
            if name not in catalog.table(path).column_names:
                raise ValueError(f"{entry.path}.{col.name}: its lineage names {path}.{name}, which is not a column")
        if refs:
            deps[col.name] = [dg.TableColumnDep(asset_key=dg.AssetKey(path.split("/")), column_name=name) for path, name in refs]
    return dg.TableColumnLineage(deps_by_column=deps) if deps else None


def catalog_metadata(key: dg.AssetKey | Sequence[str] | str) -> dict[str, object]:
    """Definition metadata of a table; includes `partition_column` (the I/O manager writes partitions by it)."""
    entry = catalog.table(key)
    metadata: dict[str, object] = {
        "dagster/column_schema": column_schema(key),
        "dagster/table_name": f"{entry.layer}.{entry.name}",
        "grain": entry.grain,
    }
    lineage = column_lineage(key)
    if lineage is not None:
        metadata[COLUMN_LINEAGE] = lineage
    if entry.partition:
        metadata[PARTITION_COLUMN] = entry.partition
        metadata["late_window"] = entry.late
    return metadata


def description(key: dg.AssetKey | Sequence[str] | str) -> str:
    entry = catalog.table(key)
    return f"{entry.grain[0].upper()}{entry.grain[1:]}. {entry.description}"


def tags(key: dg.AssetKey | Sequence[str] | str) -> dict[str, str]:
    entry = catalog.table(key)
    return {"layer": entry.layer, "domain": entry.domain, "classification": entry.classification}


def asset_attrs(key: dg.AssetKey | Sequence[str] | str) -> dict[str, object]:
    """`description`, `owners`, `tags` and `metadata` of a table, for `**asset_attrs(key)` in an asset
    decorator, `AssetOut` or `AssetSpec` (which must not pass those four themselves)."""
    entry = catalog.table(key)
    return {"description": description(key), "owners": [entry.owner], "tags": tags(key), "metadata": catalog_metadata(key)}
