"""Bronze assets: one per source, daily partitions by `drop_date`, plus `bronze/rejected_files`."""


import datetime as dt
import hashlib
import hmac
import json
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import polars as pl

from retail_lakehouse import catalog
from retail_lakehouse.bronze.transforms import (
    CARD_MASK_PREFIX,
    PARSE_THREADS,
    MalformedDrop,
    Parsed,
    bronze_table,
    parse_csv_drop,
    parse_jsonl_drop,
    safe_text,
    tokenize_cards,
)
from retail_lakehouse.landing import (
    ALL_SOURCES,
    DAILY_SOURCES,
    POS_COLUMNS,
    SOURCE_COLUMNS,
    Drop,
    LandingZone,
    StrayFile,
    expected_name,
)
from retail_lakehouse.partitions import days_in, window_dates
from retail_lakehouse.policies import RETRY, SINGLE_RUN
from retail_lakehouse.resources import CardTokenizer
from retail_lakehouse.quality import checks
from retail_lakehouse.quality.policy import check_specs_for
from retail_lakehouse.specs import asset_attrs
from retail_lakehouse.storage import Audited, Lakehouse


def _columns(source: str) -> tuple[str, ...]:
    return POS_COLUMNS if source == "pos_events" else SOURCE_COLUMNS[source]


# Per-file verdicts of this process: "" (loads) or the rejection reason, keyed by where the file
# is, its path and its fingerprint (a re-delivered file gets a new one). The bronze asset of a
# source parses its drops anyway; `bronze/rejected_files`, which runs after them in the same run,
# then reads their verdicts instead of parsing every drop a second time.
_VERDICTS: OrderedDict[tuple[str, str, str], str] = OrderedDict()
_MAX_VERDICTS = 100_000
_VERDICTS_LOCK = threading.Lock()  # drops are parsed on several threads


def _verdict_key(landing: LandingZone, drop: Drop) -> tuple[str, str, str] | None:
    return (landing.location(drop.source), drop.path, drop.fingerprint) if drop.fingerprint else None


def _remember(key: tuple[str, str, str] | None, reason: str) -> None:
    if key is None:
        return
    with _VERDICTS_LOCK:
        _VERDICTS[key] = reason
        _VERDICTS.move_to_end(key)
        while len(_VERDICTS) > _MAX_VERDICTS:
            _VERDICTS.popitem(last=False)


def parse_drop(landing: LandingZone, drop: Drop) -> Parsed:
    """One drop as text columns, card numbers NOT yet masked (`bronze_table` masks them); raises
    MalformedDrop if it cannot be loaded.

    Whatever breaks the parser on this file's bytes rejects this file only. Reading it is outside:
    a storage outage is not the file's fault, and the retry policy handles it.
    """
    key = _verdict_key(landing, drop)
    known = _VERDICTS.get(key) if key else None
    if known:
        raise MalformedDrop(known)
    data = landing.read(drop)
    try:
        if drop.source == "pos_events":
            frame = parse_jsonl_drop(data, POS_COLUMNS)
        else:
            frame = parse_csv_drop(data, SOURCE_COLUMNS[drop.source])
    except MalformedDrop as e:
        _remember(key, e.reason)
        raise
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001  (any parser failure on these bytes rejects this file only)
        rejection = MalformedDrop(f"could not be parsed ({type(e).__name__}: {e})")
        _remember(key, rejection.reason)
        raise rejection from None
    _remember(key, "")
    return frame


def drop_verdict(landing: LandingZone, drop: Drop) -> str | None:
    """Why a drop cannot be loaded, or None if it loads."""
    key = _verdict_key(landing, drop)
    if key in _VERDICTS:
        return _VERDICTS[key] or None
    try:
        parse_drop(landing, drop)
    except MalformedDrop as e:
        return e.reason
    return None


def _survey(landing: LandingZone, source: str, first: dt.date, end: dt.date, earliest: dt.date):
    today = dt.datetime.now(dt.timezone.utc).date()
    return landing.survey(source, first, end, earliest=earliest, latest=today)


def _stray_line(stray: StrayFile) -> str:
    return f"{safe_text(stray.path)} ({safe_text(stray.reason)})"


def _day_problems(
    source: str,
    first: dt.date,
    end: dt.date,
    loaded: set[dt.date],
    rejected: list[tuple[Drop, str]],
    strays: list[StrayFile],
    landing: LandingZone,
) -> dict[dt.date, str]:
    """What keeps each day of a daily source without a drop that loads: its rejected files and
    why, or the file name expected where. A gap is never silent."""
    problems = {}
    for day in days_in(first, end):
        if day in loaded:
            continue
        broken = [f"{d.path} was rejected ({r})" for d, r in rejected if d.business_date == day]
        if broken:
            problems[day] = "; ".join(broken[:3]) + ": fix or re-deliver the file"
        else:
            problems[day] = f"no drop: expected {expected_name(source)} for {day} in {landing.location(source)}"
            if strays:
                problems[day] += "; files there that no partition loads: " + "; ".join(_stray_line(s) for s in strays[:3])
    return problems


def _rejections_table(rows: list[tuple[str, str]]) -> dg.MetadataValue:
    lines = ["| file | reason |", "|---|---|"]
    lines += [f"| {path} | {reason.replace('|', '/')} |" for path, reason in rows]
    return dg.MetadataValue.md("\n".join(lines))


def _start_date(partitions_def: dg.PartitionsDefinition) -> dt.date | None:
    start = getattr(partitions_def, "start", None)
    return start.date() if isinstance(start, dt.datetime) else None


# Drops are immutable, so a day whose files are the ones bronze already loaded is not loaded again:
# each write records, in its Delta commit, the drops of the days it wrote ({day: {path: [fingerprint,
# rejection reason]}}), and a run compares the landing zone with the newest record of each day.
INGESTED = "retail_lakehouse.bronze_drops"
# How far back a run looks for those records: a daily run writes one commit per table, so this
# covers a late-data window many times over; a day not found is simply loaded again.
INGEST_HISTORY = 100


def _key_id(token_key: bytes | None) -> str:
    """Names the card-token key a load used (not the key): rows tokenized under another key are
    loaded again."""
    return "" if token_key is None else hmac.new(token_key, b"retail_lakehouse bronze key id", hashlib.sha256).hexdigest()[:16]


def _ingested(lake: Lakehouse, key: dg.AssetKey, days: list[dt.date], key_id: str) -> dict[dt.date, dict[str, list[str]]]:
    """Per day of `days`, the drops the newest commit that wrote it loaded, if it used this key."""
    found: dict[dt.date, dict[str, list[str]] | None] = {}
    wanted = {d.isoformat(): d for d in days}
    for commit in lake.history(key, INGEST_HISTORY):
        if len(found) == len(wanted):
            break
        if INGESTED not in commit:
            continue
        record = json.loads(commit[INGESTED])
        for day, files in record["days"].items():
            if day in wanted and wanted[day] not in found:
                found[wanted[day]] = files if record.get("key_id", "") == key_id else None
    return {day: files for day, files in found.items() if files is not None}


def _unchanged(drops: list[Drop], ingested: dict[dt.date, dict[str, list[str]]]) -> dict[dt.date, dict[str, list[str]]]:
    """The days whose drops are exactly the ones recorded (same paths, same fingerprints)."""
    by_day: dict[dt.date, dict[str, str]] = {}
    for drop in drops:
        by_day.setdefault(drop.business_date, {})[drop.path] = drop.fingerprint
    return {
        day: ingested[day] for day, files in by_day.items()
        if day in ingested and all(files.values()) and files == {path: fp for path, (fp, _) in ingested[day].items()}
    }


def _parsed(landing: LandingZone, drop: Drop) -> tuple[Parsed | None, str | None]:
    """(frame, None) for a drop that loads, (None, reason) for one that is rejected; a storage
    error propagates, as from `parse_drop`."""
    try:
        return parse_drop(landing, drop), None
    except MalformedDrop as e:
        return None, e.reason


# A long window's rows are not all held at once: once the parsed rows pass this size, they and
# each later month's go to a local Parquet file as soon as the month is parsed, and the I/O
# manager writes the table from those files a month at a time. (A year of bronze sales is 181 MiB
# at scale 1, held; 1.8 GiB at scale 10, spilled.)
SPILL_BYTES = 256 * 2**20


def _months(drops: list[Drop]) -> list[list[Drop]]:
    by_month: dict[tuple[int, int], list[Drop]] = {}
    for drop in drops:
        by_month.setdefault((drop.business_date.year, drop.business_date.month), []).append(drop)
    return [by_month[m] for m in sorted(by_month)]


def _ingest(
    context: dg.AssetExecutionContext, landing: LandingZone, source: str, drops: list[Drop], token_key: bytes | None, spill: Path
) -> tuple[pl.DataFrame | pl.LazyFrame, list[tuple[Drop, str]], dict[str, int]]:
    """The bronze rows of the drops that load (cards tokenized with `token_key`, when given): a
    frame, or a scan of the months spilled to `spill` (see SPILL_BYTES); the rejected drops with
    their reasons; and how many values of each text column hold a masked card number."""
    ingested_at = dt.datetime.now(dt.timezone.utc)
    held: list[pl.DataFrame] = []
    spilled: list[Path] = []
    rejected: list[tuple[Drop, str]] = []
    masked: dict[str, int] = {}
    with ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="bronze-parse") as pool:
        for month in _months(drops):
            frames = []
            for drop, (frame, reason) in zip(month, pool.map(lambda drop: _parsed(landing, drop), month)):
                if reason is not None:
                    # Recorded with its reason in bronze/rejected_files; the rest of the partition loads.
                    context.log.warning(f"{source} {drop.business_date}: rejected {drop.path}: {reason}")
                    rejected.append((drop, reason))
                    continue
                frames.append((frame, drop.path, drop.business_date))
            table = bronze_table(frames, _columns(source), ingested_at)
            # Tokenized once a month, not per file: a card paid with on many days is hashed once.
            # (A month without rows is already the table's empty frame, with the token columns.)
            if token_key is not None and "card_number" in table.columns:
                table = tokenize_cards(table, token_key)
            counts = table.select(pl.col(pl.String).str.contains(CARD_MASK_PREFIX, literal=True).sum()).row(0, named=True)
            for column, n in counts.items():
                masked[column] = masked.get(column, 0) + n
            held.append(table)
            if spilled or sum(t.estimated_size() for t in held) > SPILL_BYTES:
                for part in held:
                    spilled.append(spill / f"part-{len(spilled):05d}.parquet")
                    # lz4: the files live for one step; writing them fast matters more than their size.
                    part.write_parquet(spilled[-1], compression="lz4")
                held = []
    if spilled:
        return pl.scan_parquet(spilled), rejected, masked
    return (pl.concat(held) if held else bronze_table([], _columns(source), ingested_at)), rejected, masked


def build_bronze_asset(source: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    tokenize = "card_number" in _columns(source)
    earliest = _start_date(partitions_def)

    @dg.asset(
        key=["bronze", source],
        group_name="bronze",
        partitions_def=partitions_def,
        backfill_policy=SINGLE_RUN,
        retry_policy=RETRY,
        kinds={"polars", "delta"},
        check_specs=check_specs_for(dg.AssetKey(["bronze", source])),
        **asset_attrs(["bronze", source]),
    )
    def _bronze(context: dg.AssetExecutionContext, landing: LandingZone, card_tokenizer: CardTokenizer, lake: Lakehouse):
        first, end = window_dates(context.partition_time_window)
        drops, strays = _survey(landing, source, first, end, earliest)
        for stray in strays:
            context.log.warning(f"{source}: stray file {_stray_line(stray)}; move or rename it")
        token_key = card_tokenizer.key_bytes() if tokenize else None
        key_id = _key_id(token_key)
        unchanged = _unchanged(drops, _ingested(lake, context.asset_key, days_in(first, end), key_id))
        # The spilled months live until the I/O manager has written them (it runs at the yield).
        with tempfile.TemporaryDirectory(prefix="retail-lakehouse-bronze-") as spill:
            out, rejected, masked = _ingest(context, landing, source, [d for d in drops if d.business_date not in unchanged], token_key, Path(spill))
            for drop in (d for d in drops if d.business_date in unchanged):
                reason = unchanged[drop.business_date][drop.path][1]
                _remember(_verdict_key(landing, drop), reason)  # for bronze/rejected_files, as if parsed
                if reason:
                    rejected.append((drop, reason))
            if unchanged:
                context.log.info(f"bronze/{source}: {len(unchanged)} day(s) of the window already hold these drops, not loaded again")
            verdict = None
            if source in DAILY_SOURCES:
                broken = {d for d, _ in rejected}
                # A header-only drop counts: an empty day was delivered, not missed.
                loaded = {d.business_date for d in drops if d not in broken}
                problems = _day_problems(source, first, end, loaded, rejected, strays, landing)
                verdict = checks.drops_loaded_result(("bronze", source), problems, days_in(first, end))
                for day, problem in sorted(problems.items()):
                    context.log.error(f"bronze/{source} {day}: {problem}")
            # Each day's materialization says what was loaded and rejected that day; what belongs to no
            # day stays on the run's output (which every partition of the window repeats).
            day_metadata: dict[dt.date, dict[str, object]] = {}
            for day in days_in(first, end):
                files = [d for d in drops if d.business_date == day]
                bad = [(d.path, r) for d, r in rejected if d.business_date == day]
                day_metadata[day] = {"files_loaded": len(files) - len(bad), "files_rejected": len(bad)}
                if bad:
                    day_metadata[day]["rejections"] = _rejections_table(bad)
            metadata: dict[str, object] = {}
            if any(masked.values()):
                metadata["card_numbers_masked"] = {c: int(n) for c, n in masked.items() if n}
            if strays:
                metadata["stray_files"] = [safe_text(s.path) for s in strays]
            # A day without a drop that loads keeps its previous version (a re-delivery gone wrong
            # does not erase the good one), and its failed check stops what is downstream.
            failed = verdict.failed_days if verdict else frozenset()
            reasons = {d.path: r for d, r in rejected}
            written = {
                day.isoformat(): {d.path: [d.fingerprint, reasons.get(d.path, "")] for d in drops if d.business_date == day}
                for day in {d.business_date for d in drops} - set(unchanged) - failed
            }
            audited = Audited(
                out, failed, day_metadata=day_metadata, unchanged_days=frozenset(unchanged),
                commit_metadata={INGESTED: json.dumps({"key_id": key_id, "days": written}, sort_keys=True)},
            )
            yield dg.Output(audited, metadata=metadata)
            if verdict:
                yield verdict.result

    return _bronze


REJECTED_SCHEMA = catalog.schema("bronze", "rejected_files")


def build_rejected_files_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    earliest = _start_date(partitions_def)

    @dg.asset(
        key=["bronze", "rejected_files"],
        group_name="bronze",
        partitions_def=partitions_def,
        backfill_policy=SINGLE_RUN,
        retry_policy=RETRY,
        kinds={"polars", "delta"},
        **asset_attrs(["bronze", "rejected_files"]),
        # After the source assets of the run (without depending on them: a source that fails its
        # partition must not keep this table from saying why), so it reuses their verdicts.
        op_tags={"dagster/priority": "-1"},
    )
    def rejected_files(context: dg.AssetExecutionContext, landing: LandingZone) -> pl.DataFrame:
        """Files of the partition that could not be loaded, one row per file and day, with the reason.

        A drop is listed exactly when its bronze asset skipped it. A stray file (a name that is not
        a drop of its folder's source, or a date outside the partitions) belongs to no day, so it
        is listed on every day that runs until it is moved.
        """
        first, end = window_dates(context.partition_time_window)
        ingested_at = dt.datetime.now(dt.timezone.utc)
        rows = []
        for source in ALL_SOURCES:
            drops, strays = _survey(landing, source, first, end, earliest)
            for drop in drops:
                reason = drop_verdict(landing, drop)
                if reason is not None:
                    rows.append((source, drop.path, reason, ingested_at, drop.business_date))
            for stray in strays:
                path, reason = safe_text(stray.path), safe_text(f"stray file: {stray.reason}")
                rows.extend((source, path, reason, ingested_at, day) for day in days_in(first, end))
        out = pl.DataFrame(rows, schema=REJECTED_SCHEMA, orient="row")
        context.add_output_metadata({"files_rejected": out["_source_file"].n_unique()})
        return out

    return rejected_files


def build_bronze_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_bronze_asset(s, partitions_def) for s in ALL_SOURCES] + [build_rejected_files_asset(partitions_def)]
