"""Market basket analysis (seed 004 §4): frequent itemsets and association rules. Pure Polars.

A basket is an order; its items are the distinct products (or categories) on its lines, and only
baskets with two or more distinct items count (the seed's multi-item filter), each level on its own.
Itemsets are counted exactly, level by level (Apriori): a (k+1)-itemset is a candidate only if
every k-subset of it is frequent, and its count is the number of baskets holding all its items.
"""

import math
from itertools import combinations

import polars as pl

from retail_lakehouse.catalog import schema

FREQUENT_ITEMSETS_SCHEMA = schema("gold", "frequent_itemsets")
ASSOCIATION_RULES_SCHEMA = schema("gold", "association_rules")
LEVELS = ("product", "category")
_HIGH = 1 << 32
# Seed 004 §4: an itemset in at least 1% of multi-item orders, a rule right at least 30% of the time.
MIN_SUPPORT = 0.01
MAX_SIZE = 3
MIN_CONFIDENCE = 0.3
BASKET_READS = {"fact_sales": ("order_id", "product_id", "order_status"), "dim_product": ("product_id", "is_current", "category")}


def baskets(fact_sales: pl.DataFrame, dim_product: pl.DataFrame) -> pl.DataFrame:
    """(level, basket, item): each non-cancelled order's distinct products, and their categories."""
    lines = fact_sales.lazy().filter(pl.col("order_status") != "Cancelled").select(pl.col("order_id").alias("basket"), "product_id").unique()
    categories = dim_product.lazy().filter(pl.col("is_current")).select("product_id", "category")
    by_product = lines.select(pl.lit("product").alias("level"), "basket", pl.col("product_id").alias("item"))
    by_category = lines.join(categories, on="product_id").select(pl.lit("category").alias("level"), "basket", pl.col("category").alias("item"))
    return pl.concat([by_product, by_category.unique()]).drop_nulls().collect()


def frequent_itemsets(baskets: pl.DataFrame, min_support: float = MIN_SUPPORT, max_size: int = MAX_SIZE) -> pl.DataFrame:
    """Every itemset of up to `max_size` items whose support (share of the level's multi-item
    baskets holding it) is at least `min_support`, with its exact basket count."""
    parts = [_level_itemsets(level, baskets.filter(pl.col("level") == level), min_support, max_size) for level in LEVELS]
    frame = pl.concat(parts).select(list(FREQUENT_ITEMSETS_SCHEMA)).cast(FREQUENT_ITEMSETS_SCHEMA)
    return frame.sort("level", "size", "basket_count", pl.col("items").list.join(","), descending=[False, False, True, False])


def _level_itemsets(level: str, rows: pl.DataFrame, min_support: float, max_size: int) -> pl.DataFrame:
    # Counted over integer codes: every join below is on a basket and items, and a million text
    # keys hash and compare several times slower than integers. Items are numbered in ascending
    # order, so "i0 < i1" orders the codes as it orders the names; a (basket, item) pair is one
    # 64-bit key, so that dropping repeated pairs is one pass over one column.
    names = rows.get_column("item").drop_nulls().unique().sort()
    pair = pl.col("basket").rank("dense").cast(pl.UInt64) * _HIGH + pl.col("item").replace_strict(names, pl.int_range(names.len(), dtype=pl.UInt64, eager=True), default=None)
    rows = (
        rows.lazy().select(pair.drop_nulls().unique().alias("pair"))
        .select((pl.col("pair") // _HIGH).cast(pl.UInt32).alias("basket"), (pl.col("pair") % _HIGH).cast(pl.UInt32).alias("i0"))
        .filter(pl.len().over("basket") >= 2)
        .collect()
    )
    total = rows["basket"].n_unique()
    empty = pl.DataFrame(schema={"items": pl.List(pl.String), "basket_count": pl.Int64})
    if total == 0:
        return _finish(level, empty, total)
    min_count = max(1, math.ceil(min_support * total - 1e-9))
    found = []
    # held: (basket, i0..ik-1) for each frequent k-itemset a basket holds, items in ascending order.
    held = rows
    columns = ["i0"]
    for size in range(1, max_size + 1):
        counts = held.group_by(columns).agg(pl.len().alias("basket_count")).filter(pl.col("basket_count") >= min_count)
        if counts.is_empty():
            break
        decoded = pl.concat_list(pl.lit(names).gather(pl.col(c)) for c in columns)
        found.append(counts.select(decoded.alias("items"), pl.col("basket_count").cast(pl.Int64)))
        if size == max_size:
            break
        held = held.join(counts.select(columns), on=columns, how="semi")
        if size == 1:
            singles = held.rename({"i0": "next"})
        grown = held.join(singles, on="basket").filter(pl.col("next") > pl.col(columns[-1]))
        new = f"i{size}"
        grown = grown.rename({"next": new})
        # Apriori pruning: every size-item subset of a candidate must itself be frequent.
        for dropped in columns:
            subset = [c for c in columns if c != dropped] + [new]
            grown = grown.join(counts.select(columns).rename(dict(zip(columns, subset))), on=subset, how="semi")
        held, columns = grown, [*columns, new]
    itemsets = pl.concat(found) if found else empty
    return _finish(level, itemsets, total)


def _finish(level: str, itemsets: pl.DataFrame, total: int) -> pl.DataFrame:
    return itemsets.with_columns(
        pl.lit(level).alias("level"),
        pl.col("items").list.len().cast(pl.Int64).alias("size"),
        pl.lit(total, pl.Int64).alias("baskets"),
        (pl.col("basket_count") / total if total else pl.lit(None, pl.Float64)).alias("support"),
    )


def association_rules(itemsets: pl.DataFrame, min_confidence: float = MIN_CONFIDENCE) -> pl.DataFrame:
    """Every rule antecedent → consequent that splits a frequent itemset of two or more items into
    two non-empty parts, with confidence = support(both) / support(antecedent) at least
    `min_confidence`, and lift = confidence / support(consequent). The supports of the parts are
    in `itemsets` because every subset of a frequent itemset is frequent."""
    rows = []
    for level in LEVELS:
        at_level = itemsets.filter(pl.col("level") == level)
        support = {tuple(r["items"]): r["support"] for r in at_level.select("items", "support").iter_rows(named=True)}
        counts = dict(zip((tuple(i) for i in at_level["items"].to_list()), at_level["basket_count"].to_list()))
        for items, both in support.items():
            for k in range(1, len(items)):
                for antecedent in combinations(items, k):
                    consequent = tuple(i for i in items if i not in antecedent)
                    confidence = counts[items] / counts[antecedent]
                    if confidence >= min_confidence:
                        rows.append({
                            "level": level, "antecedent": list(antecedent), "consequent": list(consequent),
                            "antecedent_support": support[antecedent], "consequent_support": support[consequent],
                            "support": both, "basket_count": counts[items], "confidence": confidence,
                            "lift": confidence / support[consequent],
                        })
    frame = pl.DataFrame(rows, schema=ASSOCIATION_RULES_SCHEMA) if rows else pl.DataFrame(schema=ASSOCIATION_RULES_SCHEMA)
    joined = [pl.col(c).list.join(",") for c in ("antecedent", "consequent")]
    return frame.sort("level", "lift", "confidence", *joined, descending=[False, True, True, False, False])
