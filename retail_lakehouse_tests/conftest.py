"""Shared fixtures: a lakehouse on `tmp_path`, built from settings, never from `os.environ`."""

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from retail_lakehouse.definitions import build_defs
from retail_lakehouse.orchestration import run_range
from retail_lakehouse.settings import Settings

START = dt.date(2026, 9, 1)
# One fixed test key, so that lakes built side by side (and CLI runs beside them) tokenize cards alike.
TEST_TOKEN_KEY = "test-card-token-key-not-a-secret"


@dataclass
class Lake:
    settings: Settings
    defs: dg.Definitions

    @property
    def landing(self) -> Path:
        return self.settings.landing_root

    def table_path(self, name: str) -> str:
        return str(self.settings.lake_root / name)

    def read(self, name: str) -> pl.DataFrame:
        return pl.read_delta(self.table_path(name))

    def run(self, first: dt.date, last: dt.date | None = None, selection=None, **kw) -> dg.ExecuteInProcessResult:
        return run_range(self.defs, first, last or first, selection=selection, **kw)


def make_lake(root: Path, landing: Path, start: dt.date = START, **overrides: object) -> Lake:
    key_file = root / "secrets" / "card_token.key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(TEST_TOKEN_KEY)
    settings = Settings(
        landing_root=landing,
        lake_root=root / "lakehouse",
        start_date=start,
        token_key_file=key_file,
        **overrides,
    )
    return Lake(settings, build_defs(settings))


@pytest.fixture(scope="session")
def generated_landing(tmp_path_factory) -> Path:
    """Forty days of small generated drops, shared read-only by the tests that need real data."""
    from retail_lakehouse.generator import generate

    out = tmp_path_factory.mktemp("landing")
    generate(out, START, 40, seed=7, scale=0.02)
    return out


@pytest.fixture
def landing_copy(generated_landing, tmp_path) -> Path:
    """A private copy of the generated drops, for tests that add or change files."""
    out = tmp_path / "landing"
    shutil.copytree(generated_landing, out)
    return out
