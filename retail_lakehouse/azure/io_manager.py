"""Delta tables on ADLS Gen2: one container per layer, `az://<layer>/<table>`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg
import polars as pl
from pydantic import Field, PrivateAttr

from retail_lakehouse.azure.account import (
    LAYERS,
    AzureAccount,
    translate_delta_error,
)
from retail_lakehouse.azure.account import check_access as _check_access
from retail_lakehouse.storage import AUDIT_LOG_KEY, DeltaIOManager


class AzureDeltaIOManager(DeltaIOManager):
    """Stores asset `[layer, table...]` as a Delta table at `az://<layer>/<table...>`.

    Each layer's container may have its own credential (`layer_sas_tokens`, e.g. a SAS token
    scoped to `gold` for a reporting deployment); layers without one use the shared credential.
    Before a run first touches a container it checks, once, that the container exists and the
    credential may list it, so a wrong name or a refused credential fails at once with a message
    that says what to fix, instead of surfacing as a storage error deep inside a write.

    Give secret fields as `dg.EnvVar(...)`: the UI then shows the variable's name, not its value.
    """

    account_name: str = Field(description="Storage account name (AZURE_STORAGE_ACCOUNT_NAME).")
    account_key: str | None = Field(default=None, description="Shared key; give it as an EnvVar.")
    sas_token: str | None = Field(default=None, description="Shared SAS token; give it as an EnvVar.")
    layer_sas_tokens: dict[str, str] = Field(
        default_factory=dict,
        description="Per-layer SAS tokens ({'gold': EnvVar(...)}); a layer listed here uses only its token.",
    )
    tenant_id: str | None = Field(default=None, description="Service principal tenant.")
    client_id: str | None = Field(default=None, description="Service principal client id.")
    client_secret: str | None = Field(default=None, description="Service principal secret; give it as an EnvVar.")
    endpoint: str | None = Field(
        default=None, description="Blob endpoint override (the emulator, sovereign clouds)."
    )
    retry_timeout_seconds: int = Field(
        default=120, description="How long delta-rs keeps retrying transient storage errors."
    )
    max_attempts: int = Field(default=5, description="Attempts of the access check on transient errors.")

    _checked: set[str] = PrivateAttr(default_factory=set)

    def account(self, layer: str) -> AzureAccount:
        """The account and credential used for `layer`'s container."""
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}: asset keys start with one of {', '.join(LAYERS)}")
        unknown = sorted(set(self.layer_sas_tokens) - set(LAYERS))
        if unknown:
            raise ValueError(f"layer_sas_tokens names unknown layers {unknown}: use {', '.join(LAYERS)}")
        layer_token = self.layer_sas_tokens.get(layer)
        if layer_token:
            return AzureAccount(
                name=self.account_name,
                sas_token=layer_token,
                endpoint=self.endpoint or None,
                retry_timeout_seconds=self.retry_timeout_seconds,
                max_attempts=self.max_attempts,
                credential_source=f"layer_sas_tokens['{layer}'], RETAIL_LAKEHOUSE_SAS_TOKEN_{layer.upper()}",
            )
        return self.shared_account()

    def shared_account(self) -> AzureAccount:
        """The account with the shared credential (account key, SAS, service principal or ambient)."""
        return AzureAccount(
            name=self.account_name,
            account_key=self.account_key or None,
            sas_token=self.sas_token or None,
            tenant_id=self.tenant_id or None,
            client_id=self.client_id or None,
            client_secret=self.client_secret or None,
            endpoint=self.endpoint or None,
            retry_timeout_seconds=self.retry_timeout_seconds,
            max_attempts=self.max_attempts,
        )

    @staticmethod
    def _split(key: dg.AssetKey) -> tuple[str, str]:
        layer, *rest = key.path
        if not rest or any(not part or "/" in part for part in rest):
            raise ValueError(f"asset key {key.to_user_string()} must be [layer, table, ...]")
        return layer, "/".join(rest)

    def table_uri(self, key: dg.AssetKey) -> str:
        layer, path = self._split(key)
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}: asset keys start with one of {', '.join(LAYERS)}")
        return f"az://{layer}/{path}"

    def storage_options(self, key: dg.AssetKey) -> dict[str, str]:
        return self.account(self._split(key)[0]).storage_options()

    def display_uri(self, key: dg.AssetKey) -> str:
        layer, path = self._split(key)
        return self.account(layer).display_url(layer, path)

    def check_access(self, layer: str) -> None:
        """The container preflight, once per container for the life of this resource (one run)."""
        if layer in self._checked:
            return
        _check_access(self.account(layer), layer)
        self._checked.add(layer)

    @contextlib.contextmanager
    def _storage_errors(self, key: dg.AssetKey, action: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError:
            # The base class's "not materialized yet" message is already the right one.
            raise
        except OSError as err:
            layer, _ = self._split(key)
            raise translate_delta_error(
                err, self.account(layer), layer, f"{action} {self.display_uri(key)}"
            ) from err

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame) -> None:
        if obj is None:
            return
        key = context.asset_key
        self.check_access(self._split(key)[0])
        self.check_access(self._split(AUDIT_LOG_KEY)[0])
        with self._storage_errors(key, "writing"):
            super().handle_output(context, obj)

    def load_input(self, context: dg.InputContext) -> pl.LazyFrame:
        key = context.asset_key
        self.check_access(self._split(key)[0])
        with self._storage_errors(key, "reading"):
            return super().load_input(context)
