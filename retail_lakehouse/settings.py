"""The one place that reads the environment (SPEC §6).

Everything else receives a `Settings`; tests build one pointing at `tmp_path` instead of touching
`os.environ`, so no module reads the environment at import time.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# The demo's first business day; the demo data and the daily partitions line up on it.
DEMO_START = dt.date(2026, 9, 1)
DEMO_DAYS = 61

# Returns and refunds arrive up to this many days after the order (SPEC §2 change data).
LATE_DATA_DAYS = 30


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


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and what to set."""


def _default_token_key_file() -> Path:
    # Outside the work tree on purpose: the key must never be committed with the project.
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
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
    # Low-stock alerts are POSTed here as well as logged (RETAIL_LAKEHOUSE_ALERT_WEBHOOK).
    alert_webhook: str | None = None
    # True when RETAIL_LAKEHOUSE_TOKEN_KEY is set: the tokenizer then reads it through EnvVar.
    token_key_from_env: bool = False
    # Azure mode: public values, and "set" for each secret variable that is present.
    azure_env: Mapping[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        kind = env.get("RETAIL_LAKEHOUSE_ENV", "local")
        if kind not in ("local", "azure"):
            raise SettingsError(f"RETAIL_LAKEHOUSE_ENV must be 'local' or 'azure', got {kind!r}")
        engine = env.get("RETAIL_LAKEHOUSE_ENGINE", "polars")
        if engine not in ("polars", "spark"):
            raise SettingsError(
                f"RETAIL_LAKEHOUSE_ENGINE must be 'polars' or 'spark', got {engine!r}"
            )
        start = env.get("RETAIL_LAKEHOUSE_START_DATE")
        try:
            start_date = dt.date.fromisoformat(start) if start else DEMO_START
        except ValueError:
            raise SettingsError(
                f"RETAIL_LAKEHOUSE_START_DATE must be a date like 2026-09-01, got {start!r}"
            ) from None
        if kind == "azure" and not env.get("RETAIL_LAKEHOUSE_TOKEN_KEY"):
            raise SettingsError(
                "RETAIL_LAKEHOUSE_TOKEN_KEY is required when RETAIL_LAKEHOUSE_ENV=azure: "
                "card numbers are tokenized with it (keep it in your secret store)."
            )
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
            azure_env=azure_env,
            token_key_from_env=bool(env.get("RETAIL_LAKEHOUSE_TOKEN_KEY")),
            alert_webhook=env.get("RETAIL_LAKEHOUSE_ALERT_WEBHOOK") or None,
        )
