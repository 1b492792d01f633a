"""The landing zone: where raw drops arrive, and the contract of their names and columns (SPEC §2).

Drops are immutable: nothing here writes or deletes them. `LandingZone` is the small interface the
bronze assets and the sensors use; `LocalLandingZone` serves a folder on disk.
"""


import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import dagster as dg

from retail_lakehouse.sources import ALL_SOURCES, DAILY_SOURCES, POS_COLUMNS, SOURCE_COLUMNS  # noqa: F401  (re-exported)

_DROP_NAME = re.compile(
    r"^(?P<source>[a-z_]+)_(?P<date>\d{8})_(?P<time>\d{6})(?:_(?P<seq>\d{1,9}))?\.(?P<ext>[A-Za-z0-9]+)$"
)


class BadDropName(ValueError):
    """A file in a source's folder whose name is not a drop of that source; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def expected_name(source: str) -> str:
    return f"{source}_YYYYMMDD_hhmmss_<seq>.jsonl" if source == "pos_events" else f"{source}_YYYYMMDD_hhmmss.csv"


@dataclass(frozen=True, order=True)
class Drop:
    """One delivered file. Orders by business date, then stamp: the delivery order of SPEC §2."""

    business_date: dt.date
    stamp: str  # "hhmmss" or "hhmmss_seq": orders several drops of one day
    source: str
    name: str
    # The landing zone's content fingerprint when listed ("" if unknown); not part of identity.
    fingerprint: str = field(default="", compare=False)

    @property
    def path(self) -> str:
        """Path relative to the landing root, as recorded in `_source_file`."""
        return f"{self.source}/{self.name}"

    @classmethod
    def parse_name(cls, source: str, name: str, fingerprint: str = "") -> "Drop":
        """The drop a file name stands for; raises BadDropName saying what is wrong with it."""
        m = _DROP_NAME.match(name)
        if not m:
            raise BadDropName(f"not a drop name: expected {expected_name(source)}")
        if m["source"] != source:
            raise BadDropName(f"named for source {m['source']!r}, but it is in the {source} folder")
        expected_ext = "jsonl" if source == "pos_events" else "csv"
        if m["ext"] != expected_ext:
            raise BadDropName(f"extension .{m['ext']}, expected .{expected_ext} ({expected_name(source)})")
        try:
            day = dt.datetime.strptime(m["date"], "%Y%m%d").date()
        except ValueError:
            raise BadDropName(f"{m['date']} is not a date (YYYYMMDD) in {expected_name(source)}") from None
        try:
            dt.datetime.strptime(m["time"], "%H%M%S")
        except ValueError:
            raise BadDropName(f"{m['time']} is not a time of day (hhmmss) in {expected_name(source)}") from None
        stamp = m["time"] if m["seq"] is None else f"{m['time']}_{int(m['seq']):09d}"
        return cls(day, stamp, source, name, fingerprint)

    @classmethod
    def from_name(cls, source: str, name: str) -> "Drop | None":
        try:
            return cls.parse_name(source, name)
        except BadDropName:
            return None


@dataclass(frozen=True)
class StrayFile:
    """A file in a source's folder that no partition will ever load, and why."""

    source: str
    name: str
    reason: str

    @property
    def path(self) -> str:
        return f"{self.source}/{self.name}"


class Listed(NamedTuple):
    """One file of a source's folder as listed: its name, content fingerprint and size in bytes."""

    name: str
    fingerprint: str
    size: int


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def date_prefixes(source: str, first: dt.date, end: dt.date) -> list[str]:
    """The fewest name prefixes (`<source>_YYYY`, `_YYYYMM`, `_YYYYMMDD`) that match exactly the drop
    names of business dates `[first, end)`: a listing by prefix then never returns older names, and
    a long range costs a few calls (whole months and years), not one per day."""
    prefixes, day = [], first
    while day < end:
        if (day.month, day.day) == (1, 1) and dt.date(day.year + 1, 1, 1) <= end:
            prefixes.append(f"{source}_{day:%Y}")
            day = dt.date(day.year + 1, 1, 1)
        elif day.day == 1 and _next_month(day) <= end:
            prefixes.append(f"{source}_{day:%Y%m}")
            day = _next_month(day)
        else:
            prefixes.append(f"{source}_{day:%Y%m%d}")
            day += dt.timedelta(days=1)
    return prefixes


def _hidden(name: str) -> bool:
    # Dot files are the file system's or an uploader's (".DS_Store", ".part" uploads in progress),
    # never a delivery: reporting them would only teach people to ignore the report.
    return name.startswith(".")


class LandingZone(dg.ConfigurableResource):
    """List, read and fingerprint drops. Subclasses say where the landing zone is."""

    def list_files(self, source: str, prefixes: Sequence[str] = ("",)) -> list[Listed]:
        """The files of the source's folder whose names start with one of `prefixes` (by default
        every file), sorted by name. Only those are listed or looked at, where the store allows."""
        raise NotImplementedError

    def list_names(self, source: str, prefix: str = "") -> list[tuple[str, str]]:
        """(file name, fingerprint) of every file in the source's folder whose name starts with `prefix`."""
        return [(f.name, f.fingerprint) for f in self.list_files(source, (prefix,))]

    def list_dated(self, source: str, first: dt.date, end: dt.date) -> list[Listed]:
        """The files named for business dates `[first, end)` (by name, see `date_prefixes`)."""
        return self.list_files(source, date_prefixes(source, first, end))

    def read(self, drop: Drop) -> bytes:
        raise NotImplementedError

    def location(self, source: str) -> str:
        """Where a source's drops are expected, for messages."""
        raise NotImplementedError

    def list_drops(self, source: str, first: dt.date, end: dt.date) -> list[Drop]:
        """Drops of business dates `[first, end)`, in delivery order."""
        return self.survey(source, first, end)[0]

    def survey(
        self, source: str, first: dt.date, end: dt.date, earliest: dt.date | None = None, latest: dt.date | None = None
    ) -> tuple[list[Drop], list[StrayFile]]:
        """The drops of `[first, end)` in delivery order, and the stray files of the folder.

        A stray file is one no partition will ever load: its name is not a drop of the source, or
        its business date lies before `earliest` (the first partition) or after `latest` (today).
        Listed on every run until someone moves it, so that it is never silently ignored.
        """
        drops, strays = [], []
        for name, fingerprint in self.list_names(source):
            if _hidden(name):
                continue
            try:
                drop = Drop.parse_name(source, name, fingerprint)
            except BadDropName as e:
                strays.append(StrayFile(source, name, e.reason))
                continue
            if earliest is not None and drop.business_date < earliest:
                strays.append(StrayFile(
                    source, name, f"business date {drop.business_date} is before the first partition {earliest}: no run loads it"
                ))
            elif latest is not None and drop.business_date > latest:
                strays.append(StrayFile(
                    source, name, f"business date {drop.business_date} is in the future (today is {latest}, UTC)"
                ))
            elif first <= drop.business_date < end:
                drops.append(drop)
        return sorted(drops), strays

    def fingerprints(self, source: str) -> dict[str, str]:
        """{relative path: content fingerprint}; a re-delivered file gets a new fingerprint."""
        return {f"{source}/{name}": fp for name, fp in self.list_names(source)}


class LocalLandingZone(LandingZone):
    """A landing zone in a local folder: `<root>/<source>/<file>`."""

    root: str

    def _folder(self, source: str) -> Path:
        return Path(self.root) / source

    def list_files(self, source: str, prefixes: Sequence[str] = ("",)) -> list[Listed]:
        folder = self._folder(source)
        if not folder.is_dir():
            return []
        out = []
        wanted = tuple(prefixes)
        # scandir gives names without a stat per file: a folder of years of micro-batches costs one
        # directory read, and only the names asked for are stat-ed.
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(wanted) and entry.is_file():
                    st = entry.stat()
                    # Size and modification time change whenever a file is re-delivered; hashing
                    # every file on every sensor tick would read the whole landing zone each time.
                    out.append(Listed(entry.name, f"{st.st_size}-{st.st_mtime_ns}", st.st_size))
        return sorted(out)

    def read(self, drop: Drop) -> bytes:
        return (self._folder(drop.source) / drop.name).read_bytes()

    def location(self, source: str) -> str:
        return str(self._folder(source).absolute())
