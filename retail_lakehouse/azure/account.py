"""One storage account and one credential: options for delta-rs, SDK clients, retries, clear errors.

Errors come in two kinds. Transient ones (connection refused or reset, timeouts, 408, 429, 5xx) are
retried with exponential backoff: by `with_retries` around SDK calls, and by object_store itself
(bounded by `retry_timeout`) inside delta-rs and polars. Everything else fails fast: a missing
container or a refused credential will not heal by waiting, so the message names the account, the
container and what to fix, and never a secret.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

# Containers of the lakehouse layers; `ops` holds the audit log.
LAYERS: tuple[str, ...] = ("bronze", "silver", "gold", "ops")
LANDING_CONTAINER = "landing"

# Status codes worth another attempt: the service is busy, throttling or briefly broken.
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

# Same names Azure's own tools use, so the hints in messages match what operators already set.
ACCOUNT_NAME_VARIABLE = "AZURE_STORAGE_ACCOUNT_NAME"
ACCOUNT_KEY_VARIABLE = "AZURE_STORAGE_ACCOUNT_KEY"
SAS_TOKEN_VARIABLE = "AZURE_STORAGE_SAS_TOKEN"
SERVICE_PRINCIPAL_VARIABLES = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
ENDPOINT_VARIABLE = "RETAIL_LAKEHOUSE_AZURE_ENDPOINT"

_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# How object_store reports a refused request; bare "403" could be part of a duration or an id.
_REFUSED = re.compile(r"\b401 Unauthorized\b|\b403 Forbidden\b|lacked the necessary privileges")
_SAS_SIGNATURE = re.compile(r"(sig=)[^&\s\"'<]+", re.IGNORECASE)

T = TypeVar("T")


class AzureStorageError(RuntimeError):
    """A storage operation failed; the message says where and what to do, never a secret."""


class AzureAccessError(AzureStorageError):
    """The container is missing or the credential was refused: retrying will not help."""


class AzureUnavailableError(AzureStorageError):
    """The account kept failing with transient errors until the retries ran out."""


@dataclass(frozen=True)
class AzureAccount:
    """A storage account reached with one credential.

    The credential used is the first one given of: account key, SAS token, service principal
    (tenant + client + secret); with none, the ambient identity (managed identity, workload
    identity) is used. `credential_source` names where the credential came from, for messages.
    """

    name: str
    account_key: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    endpoint: str | None = None
    # object_store's default is 3 minutes, far too long for a run to sit on a dead endpoint.
    retry_timeout_seconds: float = 120.0
    max_attempts: int = 5
    credential_source: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not _ACCOUNT_NAME.match(self.name):
            raise ValueError(
                f"storage account name {self.name!r} is not valid: 3-24 lowercase letters and "
                f"digits (set {ACCOUNT_NAME_VARIABLE})"
            )
        if self.endpoint is not None:
            parts = urlsplit(self.endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"{ENDPOINT_VARIABLE} must be an http(s) URL such as "
                    "http://127.0.0.1:10000/devstoreaccount1"
                )
            if parts.query or parts.username or parts.password:
                # A credential in the URL would end up in metadata and messages.
                raise ValueError(
                    f"{ENDPOINT_VARIABLE} must not carry a query string or user info: give the "
                    f"SAS token in {SAS_TOKEN_VARIABLE} instead"
                )
        if self.client_secret and not (self.tenant_id and self.client_id):
            raise ValueError(
                "a service principal needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET; "
                "only some of them are set"
            )
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    # -- which credential -------------------------------------------------------------------------

    @property
    def credential_kind(self) -> str:
        if self.account_key:
            return "account key"
        if self.sas_token:
            return "SAS token"
        if self.client_secret:
            return "service principal"
        return "ambient identity"

    @property
    def _sas(self) -> str:
        return (self.sas_token or "").lstrip("?")

    def secrets(self) -> list[str]:
        return [s for s in (self.account_key, self._sas, self.client_secret) if s]

    def redact(self, text: str) -> str:
        """`text` without any secret of this account and without SAS signatures."""
        for secret in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(secret, "***")
        return _SAS_SIGNATURE.sub(r"\1***", text)

    # -- where ------------------------------------------------------------------------------------

    @property
    def blob_url(self) -> str:
        if self.endpoint:
            return self.endpoint.rstrip("/")
        return f"https://{self.name}.blob.core.windows.net"

    def describe(self) -> str:
        where = f" at {self.blob_url}" if self.endpoint else ""
        return f"storage account '{self.name}'{where}"

    def display_url(self, container: str, path: str = "") -> str:
        """A credential-free location for metadata and messages."""
        if self.endpoint:
            return f"{self.blob_url}/{container}/{path}".rstrip("/")
        return f"abfss://{container}@{self.name}.dfs.core.windows.net/{path}".rstrip("/")

    # -- delta-rs / polars ------------------------------------------------------------------------

    def storage_options(self) -> dict[str, str]:
        """Options for `write_deltalake`, `DeltaTable` and `pl.scan_delta` alike.

        `max_retries` is left out on purpose: polars parses that key as an integer and delta-rs
        only accepts strings, so one dict cannot serve both. `retry_timeout` bounds object_store's
        retries instead (polars ignores it and keeps its own defaults).
        """
        options = {"account_name": self.name}
        if self.account_key:
            options["account_key"] = self.account_key
        elif self.sas_token:
            options["sas_token"] = self._sas
        elif self.client_secret:
            options.update(
                tenant_id=self.tenant_id or "", client_id=self.client_id or "", client_secret=self.client_secret
            )
        if self.endpoint:
            options["endpoint"] = self.blob_url
            if self.endpoint.startswith("http://"):
                options["allow_http"] = "true"
        options["retry_timeout"] = f"{max(1, int(self.retry_timeout_seconds))}s"
        return options

    # -- SDK clients ------------------------------------------------------------------------------

    def sdk_credential(self):
        from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential

        if self.account_key:
            return AzureNamedKeyCredential(self.name, self.account_key)
        if self.sas_token:
            return AzureSasCredential(self._sas)
        try:
            from azure.identity import ClientSecretCredential, DefaultAzureCredential
        except ImportError:
            who = "a service principal" if self.client_secret else "the ambient identity"
            raise AzureStorageError(
                f"{self.describe()}: signing in with {who} needs the azure-identity package "
                f"(pip install azure-identity), or set {ACCOUNT_KEY_VARIABLE} or {SAS_TOKEN_VARIABLE}"
            ) from None
        if self.endpoint and self.endpoint.startswith("http://"):
            # The SDK refuses to send a bearer token over plain http; say so before any request.
            raise AzureStorageError(
                f"{self.describe()}: a service principal or the ambient identity needs an https endpoint; "
                f"the emulator takes {ACCOUNT_KEY_VARIABLE} or {SAS_TOKEN_VARIABLE}"
            )
        if self.client_secret:
            return ClientSecretCredential(self.tenant_id, self.client_id, self.client_secret)
        return DefaultAzureCredential()

    def _client_kwargs(self) -> dict:
        # The SDK's own retry policy would multiply with `with_retries`; one layer is enough.
        return {"retry_total": 0, "connection_timeout": 10, "read_timeout": 120}

    def blob_service(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(self.blob_url, credential=self.sdk_credential(), **self._client_kwargs())

    def datalake_service(self):
        from azure.storage.filedatalake import DataLakeServiceClient

        # The SDK derives the DFS URL from the Blob URL (".blob." -> ".dfs."); an emulator URL has
        # no such part and is used as is, which is right since every call made here goes to Blob.
        return DataLakeServiceClient(self.blob_url, credential=self.sdk_credential(), **self._client_kwargs())

    # -- messages ---------------------------------------------------------------------------------

    def credential_fix(self, container: str) -> str:
        source = f" ({self.credential_source})" if self.credential_source else ""
        if self.account_key:
            return (
                f"check that the account key{source or f' ({ACCOUNT_KEY_VARIABLE})'} is a current key "
                f"of account '{self.name}' and that {ACCOUNT_NAME_VARIABLE} names the right account"
            )
        if self.sas_token:
            return (
                f"check that the SAS token{source or f' ({SAS_TOKEN_VARIABLE})'} was issued for "
                f"container '{container}' of account '{self.name}', has not expired, and grants "
                "read, add, create, write, delete and list"
            )
        if self.client_secret:
            return (
                f"check the service principal ({'/'.join(SERVICE_PRINCIPAL_VARIABLES)}) and that it "
                f"holds 'Storage Blob Data Contributor' on container '{container}'"
            )
        return (
            f"no credential is configured, so the ambient identity was used: give it 'Storage Blob "
            f"Data Contributor' on container '{container}', or set {ACCOUNT_KEY_VARIABLE}, "
            f"{SAS_TOKEN_VARIABLE} or a service principal"
        )

    def missing_container_fix(self) -> str:
        return (
            "create it (python -m retail_lakehouse.azure create-containers) or check that "
            f"{ACCOUNT_NAME_VARIABLE} / {ENDPOINT_VARIABLE} point at the right account"
        )


# -- retries ----------------------------------------------------------------------------------------


def is_transient(err: BaseException) -> bool:
    """Worth another attempt: the network or a busy service, not a wrong name or credential."""
    if isinstance(err, (ServiceRequestError, ServiceResponseError, ConnectionError, TimeoutError)):
        return True
    if isinstance(err, HttpResponseError):
        return err.status_code in TRANSIENT_STATUS
    return False


def with_retries(
    call: Callable[[], T],
    attempts: int = 5,
    base_delay: float = 0.25,
    max_delay: float = 8.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, retried on transient errors with exponential backoff and jitter.

    Non-transient errors propagate at once; after the last attempt the transient error propagates.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as err:
            if attempt == attempts or not is_transient(err):
                raise
            # Full jitter keeps many steps that failed together from retrying in lockstep.
            sleep(random.uniform(0, min(max_delay, base_delay * 2 ** (attempt - 1))))
    raise AssertionError("unreachable")


# -- translating errors -----------------------------------------------------------------------------


def error_code(err: BaseException) -> str:
    """The storage error code of an SDK error (e.g. ContainerNotFound), or ""."""
    code = getattr(err, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _short(text: str, limit: int = 400) -> str:
    text = " ".join(_ANSI.sub("", text).replace("↳", " ").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def translate_sdk_error(err: Exception, account: AzureAccount, container: str, action: str) -> Exception:
    """An SDK error as a message naming the account, the container and what to fix."""
    code = error_code(err)
    status = getattr(err, "status_code", None)
    if isinstance(err, ResourceNotFoundError) and code in ("ContainerNotFound", "FilesystemNotFound"):
        return AzureAccessError(
            f"container '{container}' does not exist in {account.describe()} ({action}): "
            f"{account.missing_container_fix()}"
        )
    if isinstance(err, ClientAuthenticationError) and status is None:
        # No HTTP status: the identity library could not get a token at all (its message says why).
        return AzureAccessError(
            f"no token for {account.describe()}, container '{container}' ({action}): "
            f"{account.redact(_short(str(err)))}; {account.credential_fix(container)}"
        )
    if isinstance(err, ClientAuthenticationError) or status in (401, 403):
        return AzureAccessError(
            f"{account.describe()} refused the {account.credential_kind} for container '{container}' "
            f"({action}: {status} {code or type(err).__name__}): {account.credential_fix(container)}"
        )
    if is_transient(err):
        return AzureUnavailableError(
            f"{account.describe()} kept failing for container '{container}' ({action}) after "
            f"{account.max_attempts} attempts: {account.redact(_short(str(err)))}. Check "
            f"{ENDPOINT_VARIABLE} and the network, then re-run."
        )
    return AzureStorageError(
        f"{action} in container '{container}' of {account.describe()} failed: "
        f"{account.redact(_short(str(err)))}"
    )


def translate_delta_error(err: OSError, account: AzureAccount, container: str, action: str) -> AzureStorageError:
    """A delta-rs/object_store error (an OSError with a chain of causes in its text) made readable.

    Delta commits are atomic: a write that failed before its commit leaves the table at its
    previous version (files it had uploaded are unreferenced and go with the next vacuum).
    """
    text = _short(str(err), 2000)
    if _REFUSED.search(text):
        return AzureAccessError(
            f"{account.describe()} refused the {account.credential_kind} for container '{container}' "
            f"({action}): {account.credential_fix(container)}"
        )
    if "ContainerNotFound" in text:
        return AzureAccessError(
            f"container '{container}' does not exist in {account.describe()} ({action}): "
            f"{account.missing_container_fix()}"
        )
    return AzureUnavailableError(
        f"{action} failed on {account.describe()}, container '{container}', after object_store's "
        f"retries ({account.retry_timeout_seconds:g} s): {account.redact(_short(text))}. The Delta "
        f"table stays at its last committed version; check {ENDPOINT_VARIABLE} and the network, "
        "then re-run the same partitions."
    )


# -- operations -------------------------------------------------------------------------------------


def check_access(account: AzureAccount, container: str) -> None:
    """Fail fast, with a clear message, unless `container` exists and the credential may list it.

    Listing is the right probe: delta-rs lists `_delta_log`, and a container SAS may list blobs but
    not read the container's properties.
    """
    client = account.blob_service().get_container_client(container)

    def probe() -> None:
        next(iter(client.list_blobs(results_per_page=1).by_page()), None)

    try:
        with_retries(probe, attempts=account.max_attempts)
    except AzureStorageError:
        raise
    except Exception as err:
        raise translate_sdk_error(err, account, container, "listing blobs") from None


def ensure_containers(account: AzureAccount, containers: Iterable[str]) -> list[str]:
    """Create the containers (file systems) that do not exist yet; returns those created."""
    service = account.datalake_service()
    created = []
    for name in containers:
        file_system = service.get_file_system_client(name)
        try:
            with_retries(file_system.create_file_system, attempts=account.max_attempts)
            created.append(name)
        except ResourceExistsError:
            pass
        except Exception as err:
            raise translate_sdk_error(err, account, name, "creating the container") from None
    return created
