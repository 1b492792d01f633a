"""The landing zone in a `landing` container: blobs `<source>/<file>`, and the upload that fills it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError
from pydantic import Field, PrivateAttr

from retail_lakehouse.azure.account import (
    LANDING_CONTAINER,
    AzureAccount,
    AzureStorageError,
    error_code,
    check_access,
    ensure_containers,
    translate_sdk_error,
    with_retries,
)
from retail_lakehouse.azure.credentials import AzureCredentials
from retail_lakehouse.landing import Drop, LandingZone, Listed

_CONTENT_TYPES = {".csv": "text/csv; charset=utf-8", ".jsonl": "application/x-ndjson; charset=utf-8"}


class AzureLandingZone(AzureCredentials, LandingZone):
    """Drops as blobs `<container>/<source>/<file>`; a blob's ETag is its fingerprint.

    The ETag changes on every write of a blob, so a re-delivered file is seen as new even when its
    size is unchanged, without reading its content. A SAS token scoped to the landing container
    goes in `sas_token`.
    """

    container: str = Field(default=LANDING_CONTAINER, description="Container holding the drops.")

    _checked: bool = PrivateAttr(default=False)

    def account(self) -> AzureAccount:
        return self.shared_account()

    def _container_client(self):
        account = self.account()
        if not self._checked:
            check_access(account, self.container)
            self._checked = True
        return account, account.blob_service().get_container_client(self.container)

    def _call(self, account: AzureAccount, action: str, call):
        try:
            return with_retries(call, attempts=account.max_attempts)
        except AzureStorageError:
            raise
        except Exception as err:
            raise translate_sdk_error(err, account, self.container, action) from None

    def list_files(self, source: str, prefixes: Sequence[str] = ("",)) -> list[Listed]:
        account, client = self._container_client()
        folder = f"{source}/"

        def listing() -> list[Listed]:
            out = []
            # One list call per prefix: the service filters by name, so older drops are never sent.
            for prefix in dict.fromkeys(prefixes):
                for blob in client.list_blobs(name_starts_with=folder + prefix, include=["metadata"]):
                    name = blob.name[len(folder):]
                    # Hierarchical-namespace accounts list their directories as empty marker blobs.
                    if not name or "/" in name or (blob.metadata or {}).get("hdi_isfolder") == "true":
                        continue
                    out.append(Listed(name, str(blob.etag).strip('"'), blob.size or 0))
            return sorted(set(out))

        return self._call(account, f"listing {folder}", listing)

    def read(self, drop: Drop) -> bytes:
        account, _ = self._container_client()
        file_client = account.datalake_service().get_file_client(self.container, drop.path)
        try:
            return with_retries(lambda: file_client.download_file().readall(), attempts=account.max_attempts)
        except ResourceNotFoundError as err:
            if error_code(err) in ("BlobNotFound", "PathNotFound"):
                raise FileNotFoundError(f"{drop.path} is not in {self.location(drop.source)}") from None
            raise translate_sdk_error(err, account, self.container, f"reading {drop.path}") from None
        except Exception as err:
            raise translate_sdk_error(err, account, self.container, f"reading {drop.path}") from None

    def location(self, source: str) -> str:
        where = f" at {self.endpoint.rstrip('/')}" if self.endpoint else ""
        return f"az://{self.container}/{source}/ (account {self.account_name}{where})"


@dataclass
class UploadSummary:
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _md5(path: Path) -> bytes:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


def upload_landing(local_dir: str | Path, zone: AzureLandingZone, create_container: bool = True) -> UploadSummary:
    """Upload `<local_dir>/<source>/<file>` to the zone's container; unchanged blobs are skipped.

    A blob counts as unchanged when its size and Content-MD5 match the local file, so running this
    twice uploads nothing the second time, and a corrected file is uploaded again (new ETag, so the
    landing sensor sees a re-delivery). `zone` must have its configuration resolved (inside a run,
    or `zone.process_config_and_initialize()` outside one) so EnvVar fields hold their values.
    """
    from azure.storage.blob import ContentSettings

    root = Path(local_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no landing folder at {root.absolute()}: generate the drops first")
    account = zone.account()
    if create_container:
        ensure_containers(account, [zone.container])
    account, client = zone._container_client()

    def existing() -> dict[str, tuple[int, bytes | None]]:
        found = {}
        for blob in client.list_blobs():
            md5 = blob.content_settings.content_md5 if blob.content_settings else None
            found[blob.name] = (blob.size, bytes(md5) if md5 else None)
        return found

    remote = zone._call(account, "listing blobs", existing)
    summary = UploadSummary()
    for source_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(p for p in source_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
            name = f"{source_dir.name}/{path.name}"
            size, md5 = path.stat().st_size, _md5(path)
            if remote.get(name) == (size, md5):
                summary.skipped.append(name)
                continue
            settings = ContentSettings(content_type=_CONTENT_TYPES.get(path.suffix), content_md5=bytearray(md5))

            def upload(path: Path = path, name: str = name, settings: ContentSettings = settings) -> None:
                with path.open("rb") as data:
                    client.upload_blob(name, data, length=path.stat().st_size, overwrite=True, content_settings=settings)

            zone._call(account, f"uploading {name}", upload)
            summary.uploaded.append(name)
    return summary
