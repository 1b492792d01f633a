"""The landing zone: where raw drops arrive, and the contract of their names and columns (SPEC §2).

Drops are immutable: nothing here writes or deletes them. `LandingZone` is the small interface the
bronze assets and the sensors use; `LocalLandingZone` serves a folder on disk.
"""


import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from retail_lakehouse.sources import ALL_SOURCES, DAILY_SOURCES, POS_COLUMNS, SOURCE_COLUMNS  # noqa: F401  (re-exported)

_DROP_NAME = re.compile(
    r"^(?P<source>[a-z_]+)_(?P<date>\d{8})_(?P<time>\d{6})(?:_(?P<seq>\d{1,9}))?\.(?P<ext>csv|jsonl)$"
)


@dataclass(frozen=True, order=True)
class Drop:
    """One delivered file. Orders by business date, then stamp: the delivery order of SPEC §2."""

    business_date: dt.date
    stamp: str  # "hhmmss" or "hhmmss_seq": orders several drops of one day
    source: str
    name: str

    @property
    def path(self) -> str:
        """Path relative to the landing root, as recorded in `_source_file`."""
        return f"{self.source}/{self.name}"

    @classmethod
    def from_name(cls, source: str, name: str) -> "Drop | None":
        m = _DROP_NAME.match(name)
        if not m or m["source"] != source:
            return None
        expected_ext = "jsonl" if source == "pos_events" else "csv"
        if m["ext"] != expected_ext:
            return None
        try:
            day = dt.datetime.strptime(m["date"], "%Y%m%d").date()
            dt.datetime.strptime(m["time"], "%H%M%S")
        except ValueError:
            return None
        stamp = m["time"] if m["seq"] is None else f"{m['time']}_{int(m['seq']):09d}"
        return cls(day, stamp, source, name)


class LandingZone(dg.ConfigurableResource):
    """List, read and fingerprint drops. Subclasses say where the landing zone is."""

    def list_names(self, source: str) -> list[tuple[str, str]]:
        """(file name, fingerprint) of every file in the source's folder."""
        raise NotImplementedError

    def read(self, drop: Drop) -> bytes:
        raise NotImplementedError

    def location(self, source: str) -> str:
        """Where a source's drops are expected, for messages."""
        raise NotImplementedError

    def list_drops(self, source: str, first: dt.date, end: dt.date) -> list[Drop]:
        """Drops of business dates `[first, end)`, in delivery order."""
        drops = (Drop.from_name(source, name) for name, _ in self.list_names(source))
        return sorted(d for d in drops if d is not None and first <= d.business_date < end)

    def fingerprints(self, source: str) -> dict[str, str]:
        """{relative path: content fingerprint}; a re-delivered file gets a new fingerprint."""
        return {f"{source}/{name}": fp for name, fp in self.list_names(source)}


class LocalLandingZone(LandingZone):
    """A landing zone in a local folder: `<root>/<source>/<file>`."""

    root: str

    def _folder(self, source: str) -> Path:
        return Path(self.root) / source

    def list_names(self, source: str) -> list[tuple[str, str]]:
        folder = self._folder(source)
        if not folder.is_dir():
            return []
        out = []
        for entry in folder.iterdir():
            if entry.is_file():
                st = entry.stat()
                # Size and modification time change whenever a file is re-delivered; hashing every
                # file on every sensor tick would read the whole landing zone each time.
                out.append((entry.name, f"{st.st_size}-{st.st_mtime_ns}"))
        return sorted(out)

    def read(self, drop: Drop) -> bytes:
        return (self._folder(drop.source) / drop.name).read_bytes()

    def location(self, source: str) -> str:
        return str(self._folder(source).absolute())
