"""The one place that reads the environment (SPEC §6).

Everything else receives a `Settings`; tests build one pointing at `tmp_path` instead of touching
`os.environ`, so no module reads the environment at import time.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import click

# The demo's first business day; the demo data and the daily partitions line up on it.
DEMO_START = dt.date(2026, 9, 1)
DEMO_DAYS = 61

# Returns and refunds arrive up to this many days after the order (SPEC §2 change data).
LATE_DATA_DAYS = 30

# How long a run waits for another run writing the same lakehouse before it gives up (locks.py). A
# year's single-run backfill takes about three minutes here: half an hour means stuck, not busy.
LOCK_TIMEOUT_SECONDS = 1800.0

ENGINES = ("polars", "spark")

# The serving database (seed 000 §1.4); unset, nothing is served.
SQL_URL_VARIABLE = "RETAIL_LAKEHOUSE_SQL_URL"
SQL_URL_EXAMPLE = "postgresql+psycopg2://user:password@127.0.0.1:5432/retail"


AZURE_PUBLIC_VARIABLES = ("AZURE_STORAGE_ACCOUNT_NAME", "RETAIL_LAKEHOUSE_AZURE_ENDPOINT")
# Only their presence is recorded: values reach the resources through dg.EnvVar at run time, so a
# Settings object can be printed or logged without leaking a credential.
AZURE_SECRET_VARIABLES = (
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "RETAIL_LAKEHOUSE_SAS_TOKEN_BRONZE",
    "RETAIL_LAKEHOUSE_SAS_TOKEN_SILVER",
    "RETAIL_LAKEHOUSE_SAS_TOKEN_GOLD",
    "RETAIL_LAKEHOUSE_SAS_TOKEN_OPS",
    "RETAIL_LAKEHOUSE_SAS_TOKEN_LANDING",
)


class InvocationError(click.ClickException, ValueError):
    """A bad invocation: a setting, a partition or a range the user gave; one line saying what to do.

    Dagster's CLI is a click application: click prints a `ClickException` as `Error: <message>`
    and exits 1, where any other exception raised while loading the code location or checking
    `--partition` reaches the user as a traceback with the message at its very end.
    """


class SettingsError(InvocationError):
    """A setting is missing or malformed; the message names the variable and what to set."""


def _default_token_key_file(env: Mapping[str, str] | None = None) -> Path:
    # Outside the work tree on purpose: the key must never be committed with the project.
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "retail_lakehouse" / "card_token.key"


@dataclass(frozen=True)
class Settings:
    env: Literal["local", "azure"] = "local"
    engine: Literal["polars", "spark"] = "polars"
    landing_root: Path = Path("data/landing")
    lake_root: Path = Path("data/lakehouse")
    start_date: dt.date = DEMO_START
    # Local mode only: where the generated card-token key lives when the variable is unset.
    token_key_file: Path = field(default_factory=_default_token_key_file)
    late_data_days: int = LATE_DATA_DAYS
    lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS
    # Alerts are POSTed to RETAIL_LAKEHOUSE_ALERT_WEBHOOK as well as logged. Only its presence is
    # kept: a Slack or Teams webhook URL is a credential, read through dg.EnvVar at run time.
    alert_webhook_from_env: bool = False
    # Spark engine: a master URL (local[N] by default); True when RETAIL_LAKEHOUSE_SPARK_REMOTE (a
    # Spark Connect URL, which may carry a token) is set: the engine then reads it through EnvVar.
    spark_master: str | None = None
    spark_remote_from_env: bool = False
    # The heap of a Spark driver this process starts (a year of silver sales at scale 1 overflowed
    # Spark's default 1g when the groups' outputs came back through it).
    spark_driver_memory: str = "2g"
    # A folder this process and Spark's workers both reach, for the groups' outputs as Parquet
    # (RETAIL_LAKEHOUSE_SPARK_STAGING); unset: a temporary one for a local master.
    spark_staging: str | None = None
    # True when RETAIL_LAKEHOUSE_TOKEN_KEY is set: the tokenizer then reads it through EnvVar.
    token_key_from_env: bool = False
    # True when RETAIL_LAKEHOUSE_SQL_URL (a SQLAlchemy URL, which may carry a password) is set: the
    # serving assets then exist and their resource reads it through EnvVar (seed 000 §1.4).
    sql_url_from_env: bool = False
    # Azure mode: public values, and "set" for each secret variable that is present.
    azure_env: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _check_engine(self.engine)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        kind = env.get("RETAIL_LAKEHOUSE_ENV", "local")
        if kind not in ("local", "azure"):
            raise SettingsError(f"RETAIL_LAKEHOUSE_ENV must be 'local' or 'azure', got {kind!r}")
        engine = env.get("RETAIL_LAKEHOUSE_ENGINE", "polars")
        _check_engine(engine)
        start = env.get("RETAIL_LAKEHOUSE_START_DATE")
        try:
            start_date = dt.date.fromisoformat(start) if start else DEMO_START
        except ValueError:
            raise SettingsError(
                f"RETAIL_LAKEHOUSE_START_DATE must be a date like 2026-09-01, got {start!r}"
            ) from None
        lock_timeout = env.get("RETAIL_LAKEHOUSE_LOCK_TIMEOUT")
        try:
            lock_timeout_seconds = float(lock_timeout) if lock_timeout else LOCK_TIMEOUT_SECONDS
        except ValueError:
            lock_timeout_seconds = -1.0
        if not 0 <= lock_timeout_seconds < float("inf"):
            raise SettingsError(
                f"RETAIL_LAKEHOUSE_LOCK_TIMEOUT must be seconds to wait for another run, like 600 (0: do not wait), "
                f"got {lock_timeout!r}"
            )
        token_key = env.get("RETAIL_LAKEHOUSE_TOKEN_KEY")
        if token_key is not None and not token_key.strip():
            # Set but blank is a mistake (an unexpanded secret, `export X=`), not a request for
            # the default: falling back to the key file would tokenize cards under another key.
            fallback = "" if kind == "azure" else f", or unset it to use the key file {_default_token_key_file(env)}"
            raise SettingsError(
                f"RETAIL_LAKEHOUSE_TOKEN_KEY is set but blank: set it to your card-token key{fallback}"
            )
        if kind == "azure" and not token_key:
            raise SettingsError(
                "RETAIL_LAKEHOUSE_TOKEN_KEY is required when RETAIL_LAKEHOUSE_ENV=azure: "
                "card numbers are tokenized with it (keep it in your secret store)."
            )
        spark_remote = env.get("RETAIL_LAKEHOUSE_SPARK_REMOTE") or None
        if spark_remote is not None and not spark_remote.startswith("sc://"):
            # Not echoed: a Databricks Connect URL carries a token.
            raise SettingsError("RETAIL_LAKEHOUSE_SPARK_REMOTE must be a Spark Connect URL like sc://127.0.0.1:15002")
        sql_url = env.get(SQL_URL_VARIABLE)
        # Neither message echoes the value: a URL can carry a password.
        if sql_url is not None and not sql_url.strip():
            raise SettingsError(f"{SQL_URL_VARIABLE} is set but blank: set it to a SQLAlchemy URL like {SQL_URL_EXAMPLE}, or unset it")
        if sql_url is not None and "://" not in sql_url:
            raise SettingsError(f"{SQL_URL_VARIABLE} must be a SQLAlchemy URL like {SQL_URL_EXAMPLE}")
        azure_env = {n: env[n] for n in AZURE_PUBLIC_VARIABLES if env.get(n)}
        azure_env.update({n: "set" for n in AZURE_SECRET_VARIABLES if env.get(n)})
        if kind == "azure" and "AZURE_STORAGE_ACCOUNT_NAME" not in azure_env:
            raise SettingsError("AZURE_STORAGE_ACCOUNT_NAME is required when RETAIL_LAKEHOUSE_ENV=azure")
        return cls(
            env=kind,
            engine=engine,
            landing_root=Path(env.get("RETAIL_LAKEHOUSE_LANDING_ROOT", "data/landing")),
            lake_root=Path(env.get("RETAIL_LAKEHOUSE_LAKE_ROOT", "data/lakehouse")),
            start_date=start_date,
            lock_timeout_seconds=lock_timeout_seconds,
            token_key_file=_default_token_key_file(env),
            azure_env=azure_env,
            token_key_from_env=token_key is not None,
            alert_webhook_from_env=bool(env.get("RETAIL_LAKEHOUSE_ALERT_WEBHOOK")),
            spark_master=env.get("RETAIL_LAKEHOUSE_SPARK_MASTER") or None,
            spark_driver_memory=_driver_memory(env.get("RETAIL_LAKEHOUSE_SPARK_DRIVER_MEMORY") or "2g"),
            spark_remote_from_env=spark_remote is not None,
            spark_staging=env.get("RETAIL_LAKEHOUSE_SPARK_STAGING") or None,
            sql_url_from_env=sql_url is not None,
        )


def _driver_memory(value: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]*[mg]", value.strip().lower()):
        raise SettingsError(f"RETAIL_LAKEHOUSE_SPARK_DRIVER_MEMORY must be a JVM size like 2g or 1536m, got {value!r}")
    return value.strip().lower()


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise SettingsError(f"RETAIL_LAKEHOUSE_ENGINE must be polars (the default) or spark, got {engine!r}")
