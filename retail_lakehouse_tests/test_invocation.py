"""Bad invocations through the CLI users run: one line saying what to do, nothing written, no retries."""

import datetime as dt
import os
import subprocess
import sys

import dagster as dg
import pytest

from retail_lakehouse.definitions import build_defs
from retail_lakehouse.orchestration import range_tags
from retail_lakehouse.partitions import (
    ReversedRangeError,
    check_range_tags,
    daily_partitions,
    unknown_partition_message,
)
from retail_lakehouse.settings import Settings, SettingsError
from retail_lakehouse_tests.conftest import START

DAGSTER = os.path.join(os.path.dirname(sys.executable), "dagster")
YESTERDAY = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
SPAN = f"partitions run from {START} to {YESTERDAY} (yesterday, UTC); pick days in that range"


def _materialize(tmp_path, *args, **env_overrides) -> tuple[subprocess.CompletedProcess, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (tmp_path / "landing").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "RETAIL_LAKEHOUSE_LANDING_ROOT": str(tmp_path / "landing"),
        "RETAIL_LAKEHOUSE_LAKE_ROOT": str(tmp_path / "lakehouse"),
        "RETAIL_LAKEHOUSE_START_DATE": START.isoformat(),
        "RETAIL_LAKEHOUSE_TOKEN_KEY": "test-key-not-secret",
    }
    for name, value in env_overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    cmd = [DAGSTER, "asset", "materialize", "-m", "retail_lakehouse.definitions", "--select", "group:bronze", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    return proc, proc.stdout + proc.stderr


def _assert_refused_in_one_line(proc, output, message):
    assert proc.returncode != 0, output[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last == f"Error: {message}", output[-3000:]
    assert "Traceback" not in output


def _no_tables(tmp_path) -> bool:
    return not list((tmp_path / "lakehouse").rglob("_delta_log"))


def _instance(tmp_path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(tmp_path / "home"))


def test_a_reversed_range_fails_once_with_the_range_to_type_and_is_never_retried(tmp_path):
    proc, output = _materialize(tmp_path, "--partition-range", "2026-09-10...2026-09-01")
    assert proc.returncode != 0
    assert (
        "partition range 2026-09-10...2026-09-01 ends before it starts: give the earlier day first, "
        "--partition-range 2026-09-01...2026-09-10"
    ) in output
    assert "empty partition window" not in output
    assert "STEP_UP_FOR_RETRY" not in output and "retry" not in output.lower()
    with _instance(tmp_path) as instance:
        [run] = instance.get_runs()
        retries = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
        materialized = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        assert run.status == dg.DagsterRunStatus.FAILURE
    assert retries == [] and materialized == []
    assert _no_tables(tmp_path)


@pytest.mark.parametrize(
    "args, day",
    [
        (["--partition", "2025-01-01"], "2025-01-01"),
        (["--partition-range", f"2026-09-01...{YESTERDAY + dt.timedelta(days=2)}"], YESTERDAY + dt.timedelta(days=2)),
    ],
    ids=["before-the-first", "in-the-future"],
)
def test_an_unknown_partition_is_refused_before_any_run_naming_the_partitions_that_exist(tmp_path, args, day):
    proc, output = _materialize(tmp_path, *args)
    _assert_refused_in_one_line(proc, output, f"no daily partition {day}: {SPAN}")
    with _instance(tmp_path) as instance:
        assert instance.get_runs() == []
    assert _no_tables(tmp_path)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"RETAIL_LAKEHOUSE_ENGINE": "duckdb"}, "RETAIL_LAKEHOUSE_ENGINE must be polars (the default) or spark, got 'duckdb'"),
        (
            {"RETAIL_LAKEHOUSE_ENGINE": "spark", "RETAIL_LAKEHOUSE_SPARK_REMOTE": "127.0.0.1:15002"},
            "RETAIL_LAKEHOUSE_SPARK_REMOTE must be a Spark Connect URL like sc://127.0.0.1:15002",
        ),
        (
            {"RETAIL_LAKEHOUSE_TOKEN_KEY": " ", "XDG_CONFIG_HOME": "/nonexistent/config"},
            (
                "RETAIL_LAKEHOUSE_TOKEN_KEY is set but blank: set it to your card-token key, or unset it to use "
                "the key file /nonexistent/config/retail_lakehouse/card_token.key"
            ),
        ),
        (
            {"RETAIL_LAKEHOUSE_ENV": "azure", "AZURE_STORAGE_ACCOUNT_NAME": "acct", "RETAIL_LAKEHOUSE_TOKEN_KEY": ""},
            "RETAIL_LAKEHOUSE_TOKEN_KEY is set but blank: set it to your card-token key",
        ),
    ],
    ids=["unknown-engine", "spark-remote-not-a-url", "blank-key-local", "empty-key-azure"],
)
def test_a_bad_setting_is_refused_when_the_code_location_loads(tmp_path, env, message):
    proc, output = _materialize(tmp_path, "--partition", START.isoformat(), **env)
    _assert_refused_in_one_line(proc, output, message)
    with _instance(tmp_path) as instance:
        assert instance.get_runs() == []
    assert _no_tables(tmp_path)


def test_the_spark_engine_without_pandas_is_refused_when_the_code_location_loads(tmp_path):
    # `make setup` installs no pandas, and pyspark's grouped Arrow API will not start without it.
    # The tests' environment has it (they run the Spark engine), so a package that fails to import
    # exactly as a missing pandas does stands in for the user's environment.
    shadow = tmp_path / "without_pandas" / "pandas"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'pandas'\", name='pandas')\n")
    proc, output = _materialize(tmp_path, "--partition", START.isoformat(), RETAIL_LAKEHOUSE_ENGINE="spark", PYTHONPATH=str(shadow.parent))
    _assert_refused_in_one_line(proc, output, (
        "RETAIL_LAKEHOUSE_ENGINE=spark needs pandas, which pyspark's grouped Arrow API checks for: "
        "pip install -e '.[spark]' (or '.[spark-connect]' for a Spark Connect server)"
    ))
    assert _no_tables(tmp_path)


def test_settings_refuse_what_the_cli_refuses_and_keep_what_they_accept():
    base = {"RETAIL_LAKEHOUSE_TOKEN_KEY": "k"}
    with pytest.raises(SettingsError, match="must be polars"):
        Settings(engine="duckdb")
    spark = Settings.from_env({**base, "RETAIL_LAKEHOUSE_ENGINE": "spark", "RETAIL_LAKEHOUSE_SPARK_REMOTE": "sc://h:15002"})
    assert (spark.engine, spark.spark_remote_from_env, spark.spark_master) == ("spark", True, None)
    assert "sc://" not in repr(spark)
    with pytest.raises(SettingsError, match="RETAIL_LAKEHOUSE_SPARK_DRIVER_MEMORY must be a JVM size like 2g or 1536m, got '2 GB'"):
        Settings.from_env({**base, "RETAIL_LAKEHOUSE_SPARK_DRIVER_MEMORY": "2 GB"})
    local = build_defs(Settings.from_env({**base, "RETAIL_LAKEHOUSE_ENGINE": "spark", "RETAIL_LAKEHOUSE_SPARK_DRIVER_MEMORY": "3G"}))
    assert local.resources["engine"].spark.spark_config["spark.driver.memory"] == "3g"
    for blank in ("", "  ", "\t\n"):
        with pytest.raises(SettingsError, match="set but blank"):
            Settings.from_env({"RETAIL_LAKEHOUSE_TOKEN_KEY": blank})
    assert Settings.from_env(base).engine == "polars"
    assert Settings.from_env(base).token_key_from_env
    unset = Settings.from_env({"XDG_CONFIG_HOME": "/cfg"})
    assert not unset.token_key_from_env
    assert str(unset.token_key_file) == "/cfg/retail_lakehouse/card_token.key"
    # One line each: the CLI prints them as "Error: <message>".
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"RETAIL_LAKEHOUSE_ENGINE": "duckdb"})
    assert "\n" not in str(err.value) and isinstance(err.value, ValueError)
    assert Settings.from_env(base).lock_timeout_seconds == 1800
    assert Settings.from_env({**base, "RETAIL_LAKEHOUSE_LOCK_TIMEOUT": "0"}).lock_timeout_seconds == 0
    for bad in ("soon", "-1", "inf", "nan"):
        with pytest.raises(SettingsError, match="RETAIL_LAKEHOUSE_LOCK_TIMEOUT must be seconds to wait"):
            Settings.from_env({**base, "RETAIL_LAKEHOUSE_LOCK_TIMEOUT": bad})


def test_ranges_are_checked_in_python_as_on_the_cli():
    with pytest.raises(ReversedRangeError, match=r"--partition-range 2026-09-01\.\.\.2026-09-10"):
        range_tags(dt.date(2026, 9, 10), dt.date(2026, 9, 1))
    with pytest.raises(dg.Failure) as failure:
        check_range_tags(range_tags(dt.date(2026, 9, 1), dt.date(2026, 9, 10)) | {"dagster/asset_partition_range_end": "2026-08-30"})
    assert failure.value.allow_retries is False
    check_range_tags(range_tags(dt.date(2026, 9, 1), dt.date(2026, 9, 1)))
    check_range_tags({})
    partitions = daily_partitions(START)
    assert isinstance(partitions, dg.DailyPartitionsDefinition)
    assert partitions == dg.DailyPartitionsDefinition(start_date=START.isoformat(), timezone="UTC")
    assert unknown_partition_message(partitions, "last-week") == f"partition key 'last-week' is not a date like 2026-09-01: {SPAN}"
    future = YESTERDAY + dt.timedelta(days=30)
    assert unknown_partition_message(daily_partitions(future), future.isoformat()) == (
        f"no daily partition {future}: there are no partitions yet, the first ({future}, "
        "RETAIL_LAKEHOUSE_START_DATE) exists once that day has ended (UTC)"
    )


def test_loading_the_code_location_hides_it_from_the_cyclic_collector_which_still_collects_what_runs_create(tmp_path):
    # A fresh interpreter, as the CLI and the run workers are: this test process froze long ago.
    probe = """
import gc, weakref
import dagster as dg  # loaded first, as by the CLI: what the package's own freeze is for
before = len(gc.get_objects())
from retail_lakehouse.definitions import _built
from retail_lakehouse.settings import Settings
_built(Settings.from_env())  # what `defs` returns to Dagster
assert gc.isenabled()
assert gc.get_freeze_count() > before, (gc.get_freeze_count(), before)
class Node: pass
a, b = Node(), Node()
a.other, b.other = b, a
dead = weakref.ref(a)
del a, b
gc.collect()
assert dead() is None, "a cycle made after the load was not collected"
print("ok", gc.get_freeze_count(), len(gc.get_objects()))
"""
    env = {**os.environ, "RETAIL_LAKEHOUSE_TOKEN_KEY": "test-key-not-secret", "RETAIL_LAKEHOUSE_LAKE_ROOT": str(tmp_path / "lake"),
           "RETAIL_LAKEHOUSE_LANDING_ROOT": str(tmp_path / "landing"), "RETAIL_LAKEHOUSE_START_DATE": START.isoformat()}
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frozen, tracked = map(int, proc.stdout.split()[1:])
    # What the collector still walks after the load is a small part of what the process holds.
    assert tracked < frozen / 5, (tracked, frozen)
