"""Bad input never takes down good input: each broken or stray file is rejected by name with a
short, printable reason in bronze/rejected_files, and every other file of its source loads."""

import datetime as dt
import logging
import os
import shutil
import subprocess
import sys

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retail_lakehouse.bronze.transforms import MalformedDrop, read_csv_drop
from retail_lakehouse.definitions import build_defs
from retail_lakehouse.landing import ALL_SOURCES, SOURCE_COLUMNS, LocalLandingZone
from retail_lakehouse.orchestration import run_range
from retail_lakehouse_tests.conftest import START, make_lake

BRONZE = dg.AssetSelection.groups("bronze")
DAY = START + dt.timedelta(days=1)  # the day the bad files belong to
LAST = START + dt.timedelta(days=2)
WINDOW = [START, DAY, LAST]


def _csv(source: str, *rows: dict, header: str | None = None) -> bytes:
    columns = SOURCE_COLUMNS[source]
    lines = [header if header is not None else ",".join(columns)]
    lines += [",".join(r.get(c, "") for c in columns) for r in rows]
    return ("\n".join(lines) + "\n").encode()


LOYALTY_ROW = {"event_id": "LOY-X-1", "customer_id": "C000001", "event_ts": "2026-09-02 10:00:00", "event_type": "earn", "points_earned": "5", "points_redeemed": "0"}
SALES_ROW = {"order_id": "OX1", "line_number": "1", "customer_id": "C000001", "product_id": "P00001", "store_id": "S001",
             "order_ts": "2026-09-02 10:00:00", "quantity": "1", "unit_price": "9.99", "sales_channel": "Online", "is_returned": "0"}
PAYMENT_ROWS = (
    {"payment_id": "PAYX1", "order_id": "OX1", "payment_type": "Credit Card", "card_brand": "Visa", "card_number": "4111111111111111",
     "amount": "9.99", "payment_status": "Completed", "transaction_ts": "2026-09-02 10:00:00", "is_refunded": "0"},
)
LOYALTY_HEADER = ",".join(SOURCE_COLUMNS["loyalty"])


def _headerless_payment() -> bytes:
    return _csv("payment_refund", *PAYMENT_ROWS).split(b"\n", 1)[1]


def _quoted(source: str, row: dict, column: str, raw: str) -> bytes:
    """A drop whose `column` is written exactly as `raw` (quotes and all)."""
    columns = SOURCE_COLUMNS[source]
    line = ",".join(raw if c == column else row.get(c, "") for c in columns)
    return (",".join(columns) + "\n" + line + "\n" + ",".join(row.get(c, "") for c in columns) + "\n").encode()


# kind -> (source, file name, content, fragment of the expected reason)
D = f"{DAY:%Y%m%d}"
BAD_FILES = {
    "nul_bytes": ("sales_returns", f"sales_returns_{D}_235900.csv", b"\x00" * 4096, "binary content: NUL byte at offset 0 (line 1)"),
    "binary_garbage": ("inventory", f"inventory_{D}_235900.csv", bytes(range(256)) * 8, "binary content: NUL byte"),
    "empty_file": ("customer", f"customer_{D}_235900.csv", b"", "empty file"),
    "whitespace_only": ("inventory", f"inventory_{D}_235901.csv", b"\n  \r\n\n", "empty file"),
    "field_over_128kb": ("sales_returns", f"sales_returns_{D}_235901.csv",
                         _csv("sales_returns", {**SALES_ROW, "return_reason": "x" * 200_000}),
                         "field too large: column return_reason of data row 1 is 200,000 bytes"),
    "first_line_over_64kb": ("product", f"product_{D}_235900.csv", b"y" * 300_000 + b"\n1\n", "the first line is longer than 64 KB"),
    "renamed_column": ("loyalty", f"loyalty_{D}_235900.csv",
                       _csv("loyalty", LOYALTY_ROW, header=LOYALTY_HEADER.replace("points_earned", "points")),
                       "wrong header: missing ['points_earned'], unexpected ['points']"),
    "extra_column": ("loyalty", f"loyalty_{D}_235901.csv",
                     (LOYALTY_HEADER + ",note\n" + ",".join(LOYALTY_ROW.values()) + ",hello\n").encode(),
                     "wrong header: missing [], unexpected ['note']"),
    "missing_column": ("loyalty", f"loyalty_{D}_235902.csv",
                       (LOYALTY_HEADER.rsplit(",", 1)[0] + "\n" + ",".join(list(LOYALTY_ROW.values())[:-1]) + "\n").encode(),
                       "wrong header: missing ['points_redeemed'], unexpected []"),
    "columns_out_of_order": ("loyalty", f"loyalty_{D}_235903.csv",
                             _csv("loyalty", header=",".join(reversed(SOURCE_COLUMNS["loyalty"]))),
                             "wrong header: columns out of order"),
    "duplicated_column": ("loyalty", f"loyalty_{D}_235904.csv",
                          _csv("loyalty", header=LOYALTY_HEADER.replace("points_redeemed", "points_earned")),
                          "wrong header: duplicated column(s) ['points_earned']"),
    "wrong_delimiter": ("loyalty", f"loyalty_{D}_235905.csv", _csv("loyalty", LOYALTY_ROW).replace(b",", b";"),
                        "wrong delimiter: the header is separated by semicolons"),
    "not_utf8": ("customer", f"customer_{D}_235901.csv",
                 _csv("customer", {"customer_id": "CX1", "name": "Jürgen Müller"}).decode().encode("cp1252"),
                 "not UTF-8: byte 0xfc"),
    "utf16": ("customer", f"customer_{D}_235902.csv", _csv("customer", {"customer_id": "CX1"}).decode().encode("utf-16"),
              "UTF-16 encoded"),
    "unbalanced_quote": ("loyalty", f"loyalty_{D}_235906.csv",
                         _quoted("loyalty", LOYALTY_ROW, "event_type", '"earn'),
                         "unbalanced quote: the quoted field opened on line 2 is never closed"),
    "stray_quote": ("sales_returns", f"sales_returns_{D}_235902.csv",
                    _quoted("sales_returns", SALES_ROW, "return_reason", 'too big, 55" TV'.replace(",", "")),
                    "stray quote on line 2"),
    "truncated": ("loyalty", f"loyalty_{D}_235907.csv", _csv("loyalty", LOYALTY_ROW, LOYALTY_ROW)[:-12],
                  "truncated: the last record (line 3) is incomplete"),
    "short_record": ("loyalty", f"loyalty_{D}_235908.csv", _csv("loyalty", LOYALTY_ROW) + b"1,2\n",
                     "1 record(s) with a field count different from the header's 6 (data row(s) 2)"),
    "headerless_payment": ("payment_refund", f"payment_refund_{D}_235900.csv", _headerless_payment(),
                           "wrong header: no header row"),
    "invalid_json_batch": ("pos_events", f"pos_events_{D}_235900_0099.jsonl", b'{"event_id": "E1"}\n{"event_id":\n',
                           "invalid JSON on line 2"),
}
# Files no partition loads: reported on every day of the run, never skipped without a word.
STRAY_FILES = {
    "impossible_date": ("sales_returns", "sales_returns_20261399_000000.csv", _csv("sales_returns", SALES_ROW),
                        "stray file: 20261399 is not a date (YYYYMMDD)"),
    "impossible_time": ("loyalty", f"loyalty_{D}_256000.csv", _csv("loyalty", LOYALTY_ROW), "256000 is not a time of day"),
    "before_first_partition": ("sales_returns", "sales_returns_20250815_230000.csv", _csv("sales_returns", SALES_ROW),
                               "business date 2025-08-15 is before the first partition 2026-09-01"),
    "in_the_future": ("customer", "customer_20991231_230000.csv", _csv("customer"), "business date 2099-12-31 is in the future"),
    "not_a_drop_name": ("loyalty", "notes.txt", b"hello", "stray file: not a drop name: expected loyalty_YYYYMMDD_hhmmss.csv"),
    "other_source_name": ("product", f"customer_{D}_230000.csv", _csv("customer"), "named for source 'customer', but it is in the product folder"),
    "wrong_extension": ("inventory", f"inventory_{D}_230000.txt", b"x", "extension .txt, expected .csv"),
}


@pytest.fixture(scope="module")
def small_landing(tmp_path_factory):
    """Three generated days, and their bronze tables loaded without any bad file."""
    from retail_lakehouse.generator import generate

    root = tmp_path_factory.mktemp("baseline")
    generate(root / "landing", START, 3, seed=5, scale=0.02)
    lake = make_lake(root, root / "landing")
    lake.run(START, LAST, selection=BRONZE)
    return root / "landing", {s: _table(lake, s) for s in ALL_SOURCES}, lake.read("bronze/rejected_files")


def _table(lake, source: str) -> pl.DataFrame:
    return lake.read(f"bronze/{source}").drop("_ingested_at").sort("_source_file", "_row_number")


def _lake_with(tmp_path, landing, files: list[tuple[str, str, bytes]]):
    copy = tmp_path / "landing"
    shutil.copytree(landing, copy)
    for source, name, content in files:
        (copy / source).mkdir(exist_ok=True)
        (copy / source / name).write_bytes(content)
    return make_lake(tmp_path, copy), copy


def _assert_safe(reason: str) -> None:
    assert len(reason) <= 200, reason
    assert reason.isprintable(), reason


def _new_rejections(lake, baseline_rejected: pl.DataFrame) -> pl.DataFrame:
    rejected = lake.read("bronze/rejected_files")
    return rejected.filter(~pl.col("_source_file").is_in(baseline_rejected["_source_file"].implode()))


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_file_is_rejected_by_name_and_everything_else_still_loads(kind, small_landing, tmp_path):
    landing, baseline, baseline_rejected = small_landing
    source, name, content, fragment = BAD_FILES[kind]
    lake, _ = _lake_with(tmp_path, landing, [(source, name, content)])
    lake.run(START, LAST, selection=BRONZE)
    rejected = _new_rejections(lake, baseline_rejected)
    assert rejected.select("source", "_source_file", "drop_date").rows() == [(source, f"{source}/{name}", DAY)]
    reason = rejected["reason"][0]
    assert fragment in reason
    _assert_safe(reason)
    # The other files of the source, that day and the days around it, loaded exactly as without it.
    assert_frame_equal(_table(lake, source), baseline[source])


@pytest.mark.parametrize("kind", sorted(STRAY_FILES))
def test_a_stray_file_is_reported_on_every_day_of_the_run_and_everything_else_still_loads(kind, small_landing, tmp_path):
    landing, baseline, baseline_rejected = small_landing
    source, name, content, fragment = STRAY_FILES[kind]
    lake, _ = _lake_with(tmp_path, landing, [(source, name, content)])
    instance = dg.DagsterInstance.ephemeral()
    result = lake.run(START, LAST, selection=BRONZE, instance=instance)
    rejected = _new_rejections(lake, baseline_rejected).sort("drop_date")
    assert rejected.select("source", "_source_file").unique().rows() == [(source, f"{source}/{name}")]
    assert rejected["drop_date"].to_list() == WINDOW
    assert all(fragment in r for r in rejected["reason"]), rejected["reason"][0]
    _assert_safe(rejected["reason"][0])
    assert_frame_equal(_table(lake, source), baseline[source])
    # The run log says it too: a warning naming the file, what is wrong and what to do.
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any(f"stray file {source}/{name} (" in m and "move or rename it" in m for m in warnings), warnings


@pytest.mark.parametrize("ending", [b"\r", b"\r\n", "mixed"])
def test_cr_only_crlf_and_mixed_line_endings_load_the_same_rows_as_lf(ending, small_landing, tmp_path):
    landing, baseline, baseline_rejected = small_landing
    path = landing / "sales_returns" / f"sales_returns_{D}_230000.csv"
    lines = path.read_bytes().split(b"\n")
    if ending == "mixed":
        seps = [(b"\n", b"\r\n", b"\r")[i % 3] for i in range(len(lines) - 1)]
        content = b"".join(line + sep for line, sep in zip(lines, seps)) + lines[-1]
    else:
        content = ending.join(lines)
    lake, _ = _lake_with(tmp_path, landing, [("sales_returns", path.name, content)])
    lake.run(START, LAST, selection=BRONZE)
    assert _new_rejections(lake, baseline_rejected).is_empty()
    assert_frame_equal(_table(lake, "sales_returns"), baseline["sales_returns"])


def test_a_header_only_drop_is_an_empty_day_not_a_rejection(small_landing, tmp_path):
    landing, baseline, baseline_rejected = small_landing
    for header_only in (LOYALTY_HEADER.encode() + b"\n", LOYALTY_HEADER.encode() + b"\r\n", LOYALTY_HEADER.encode()):
        assert read_csv_drop(header_only, SOURCE_COLUMNS["loyalty"]).height == 0
    lake, _ = _lake_with(tmp_path, landing, [("loyalty", f"loyalty_{D}_235900.csv", LOYALTY_HEADER.encode())])
    lake.run(START, LAST, selection=BRONZE)
    assert _new_rejections(lake, baseline_rejected).is_empty()
    assert_frame_equal(_table(lake, "loyalty"), baseline["loyalty"])


def test_hidden_files_are_not_drops_and_not_reported(small_landing, tmp_path):
    landing, _, baseline_rejected = small_landing
    lake, _ = _lake_with(tmp_path, landing, [("sales_returns", ".DS_Store", b"\x00\x01"), ("loyalty", ".loyalty.csv.part", b"x")])
    lake.run(START, LAST, selection=BRONZE)
    assert _new_rejections(lake, baseline_rejected).is_empty()


def test_a_day_whose_only_drop_is_rejected_fails_naming_source_day_file_and_reason(small_landing, tmp_path):
    landing, baseline, baseline_rejected = small_landing
    name = f"loyalty_{D}_230000.csv"
    lake, _ = _lake_with(tmp_path, landing, [("loyalty", name, _quoted("loyalty", LOYALTY_ROW, "event_type", '"earn'))])
    result = lake.run(START, LAST, selection=BRONZE, raise_on_error=False)
    assert not result.success
    [gate] = [e for e in result.get_asset_check_evaluations() if e.asset_key.path == ["bronze", "loyalty"]]
    assert not gate.passed and gate.metadata["failed_days"].value == DAY.isoformat()
    assert f"loyalty/{name} was rejected (unbalanced quote: the quoted field opened on line 2 is never closed)" in gate.description
    # A broken file does not mend itself: no retries, the run fails at once.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    # The table that says why was written, the source's other days and the other sources loaded.
    assert f"loyalty/{name}" in _new_rejections(lake, baseline_rejected)["_source_file"].to_list()
    assert_frame_equal(_table(lake, "customer"), baseline["customer"])
    loyalty_days = set(lake.read("bronze/loyalty")["drop_date"].unique())
    assert DAY not in loyalty_days and len(loyalty_days) == (LAST - START).days


def test_rejected_files_reuses_the_verdicts_of_the_source_assets_instead_of_parsing_twice(small_landing, tmp_path):
    landing, _, _ = small_landing
    reads: list[str] = []

    class CountingLanding(LocalLandingZone):
        def read(self, drop):
            reads.append(drop.path)
            return super().read(drop)

    lake, copy = _lake_with(tmp_path, landing, [("loyalty", f"loyalty_{D}_235900.csv", b"\x00")])
    defs = build_defs(lake.settings)
    counted = dg.Definitions(
        assets=list(defs.assets), asset_checks=list(defs.asset_checks or []), jobs=list(defs.jobs),
        resources={**defs.resources, "landing": CountingLanding(root=str(copy.absolute()))}, executor=dg.in_process_executor,
    )
    run_range(counted, START, LAST, selection=BRONZE)
    assert reads and len(reads) == len(set(reads)), "some drop was read twice"
    assert f"loyalty/loyalty_{D}_235900.csv" in reads


def test_reasons_are_short_and_printable_whatever_the_file_holds():
    cols = SOURCE_COLUMNS["customer"]
    header = ",".join(cols).encode()
    for data in (
        header.replace(b"name", b"na\x07me" + b"\x01" * 5000),
        header + b",\xe2\x80\x8b" * 3000 + b"\n",
        b"\t".join(c.encode() for c in cols) + b"\n",
        header.replace(b"email", b"e" * 5000) + b"\n",
    ):
        with pytest.raises(MalformedDrop) as e:
            read_csv_drop(data, cols)
        _assert_safe(e.value.reason)


def test_the_cli_names_every_rejected_and_stray_file_and_the_run_still_succeeds(small_landing, tmp_path):
    landing, _, _ = small_landing
    picked = [BAD_FILES[k][:3] for k in ("nul_bytes", "empty_file", "field_over_128kb", "headerless_payment", "not_utf8")]
    picked += [STRAY_FILES[k][:3] for k in ("impossible_date", "before_first_partition")]
    _, copy = _lake_with(tmp_path, landing, picked)
    (tmp_path / "home").mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "RETAIL_LAKEHOUSE_LANDING_ROOT": str(copy),
        "RETAIL_LAKEHOUSE_LAKE_ROOT": str(tmp_path / "cli"),
        "RETAIL_LAKEHOUSE_START_DATE": START.isoformat(),
        "RETAIL_LAKEHOUSE_TOKEN_KEY": "test-key-not-secret",
    }
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    cmd = [dagster, "asset", "materialize", "-m", "retail_lakehouse.definitions", "--select", "group:bronze",
           "--partition-range", f"{START}...{LAST}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    for source, name, _ in picked:
        assert f"{source}/{name}" in output, f"{source}/{name} not named in the CLI output"
    assert "binary content: NUL byte at offset 0" in output and "empty file" in output and "no header row" in output
    rejected = pl.read_delta(str(tmp_path / "cli" / "bronze" / "rejected_files"))
    assert {f"{s}/{n}" for s, n, _ in picked} <= set(rejected["_source_file"])
