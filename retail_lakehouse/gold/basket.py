"""Market basket analysis (seed 004 §4): frequent itemsets and association rules. Pure Polars.

A basket is an order; its items are the distinct products (or categories) on its lines, and only
baskets with two or more distinct items count (the seed's multi-item filter), each level on its own.
Itemsets are counted exactly, level by level (Apriori): a (k+1)-itemset is a candidate only if
every k-subset of it is frequent, and its count is the number of baskets holding all its items.
"""

import math
from itertools import combinations

import numpy as np
import polars as pl

from retail_lakehouse.catalog import schema

FREQUENT_ITEMSETS_SCHEMA = schema("gold", "frequent_itemsets")
ASSOCIATION_RULES_SCHEMA = schema("gold", "association_rules")
LEVELS = ("product", "category")
_HIGH = 1 << 32
# Bits in one basket mask: up to this many frequent items, itemsets are counted over masks.
_MASK_BITS = 64
# Candidate x mask comparisons held in memory at once (bytes of the boolean matrix).
_MATCH_CHUNK = 1 << 25
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
    singles = rows.group_by("i0").agg(pl.len().alias("basket_count")).filter(pl.col("basket_count") >= min_count).sort("i0")
    if singles.height <= _MASK_BITS:
        return _finish(level, _itemsets_by_masks(rows, singles, names, min_count, max_size), total)
    found = []
    # held: (basket, i0..ik-1) for each frequent k-itemset a basket holds, items in ascending order.
    held = rows
    columns = ["i0"]
    for size in range(1, max_size + 1):
        counts = singles if size == 1 else held.group_by(columns).agg(pl.len().alias("basket_count")).filter(pl.col("basket_count") >= min_count)
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


def _itemsets_by_masks(rows: pl.DataFrame, singles: pl.DataFrame, names: pl.Series, min_count: int, max_size: int) -> pl.DataFrame:
    # With at most 64 frequent items (a catalog's categories; the few products in 1% of orders),
    # each basket is one 64-bit mask of the frequent items it holds, and baskets with the same
    # mask are counted once: a candidate's count is the weight of the masks that contain it. This
    # replaces the joins of baskets with candidates, which grow with baskets x items per basket.
    codes = singles["i0"].to_list()
    bits = pl.DataFrame({"i0": codes, "bit": [1 << k for k in range(len(codes))]}, schema={"i0": pl.UInt32, "bit": pl.UInt64})
    masks = (
        rows.lazy().join(bits.lazy(), on="i0")
        .group_by("basket").agg(pl.col("bit").sum().alias("mask"))  # distinct bits: the sum is their OR
        .filter(pl.col("mask").bitwise_count_ones() >= 2)
        .group_by("mask").agg(pl.len().alias("weight"))
        .collect()
    )
    mask = masks["mask"].to_numpy()
    weight = masks["weight"].to_numpy().astype(np.int64)
    # Itemsets as tuples of bit positions, ascending: bit order is code order is name order.
    frequent = {(k,): n for k, n in enumerate(singles["basket_count"].to_list())}
    found = dict(frequent)
    for size in range(2, max_size + 1):
        candidates = _candidates(sorted(frequent), size)
        if not candidates:
            break
        counts = _contained_weight(mask, weight, np.array([sum(1 << k for k in c) for c in candidates], dtype=np.uint64))
        frequent = {c: int(n) for c, n in zip(candidates, counts) if n >= min_count}
        found.update(frequent)
    item_names = [names[code] for code in codes]
    return pl.DataFrame(
        {"items": [[item_names[k] for k in c] for c in found], "basket_count": list(found.values())},
        schema={"items": pl.List(pl.String), "basket_count": pl.Int64},
    )


def _candidates(frequent: list[tuple[int, ...]], size: int) -> list[tuple[int, ...]]:
    """Apriori's candidates of `size` items: two frequent (size-1)-itemsets that differ only in
    their last item, kept when every (size-1)-subset is frequent."""
    held = set(frequent)
    out = []
    for i, a in enumerate(frequent):
        for b in frequent[i + 1:]:
            if a[:-1] != b[:-1]:
                break
            candidate = (*a, b[-1])
            if all(candidate[:k] + candidate[k + 1:] in held for k in range(size - 2)):
                out.append(candidate)
    return out


def _contained_weight(mask: np.ndarray, weight: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """For each candidate mask, the total weight of the basket masks holding all its bits."""
    out = np.empty(len(candidates), dtype=np.int64)
    step = max(1, _MATCH_CHUNK // max(1, len(mask)))
    for start in range(0, len(candidates), step):
        chunk = candidates[start:start + step, None]
        out[start:start + step] = ((mask[None, :] & chunk) == chunk) @ weight
    return out


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
