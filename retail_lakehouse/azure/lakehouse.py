"""Delta tables on ADLS Gen2: one container per layer, `az://<layer>/<table>`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg
from pydantic import Field, PrivateAttr

from retail_lakehouse.azure.account import LAYERS, AzureAccount, translate_delta_error
from retail_lakehouse.azure.account import check_access as _check_access
from retail_lakehouse.azure.credentials import AzureCredentials
from retail_lakehouse.storage import Lakehouse


class AzureLakehouse(AzureCredentials, Lakehouse):
    """Asset `[layer, table...]` is the Delta table `az://<layer>/<table...>`.

    Each layer's container may have its own credential (`layer_sas_tokens`, e.g. a SAS token
    scoped to `gold` for a reporting deployment); layers without one use the shared credential.
    Before this resource first touches a container it checks, once, that the container exists and
    the credential may list it, so a wrong name or a refused credential fails at once with a
    message that says what to fix, instead of surfacing as a storage error deep inside a write.
    """

    layer_sas_tokens: dict[str, str] = Field(
        default_factory=dict,
        description="Per-layer SAS tokens ({'gold': EnvVar(...)}); a layer listed here uses only its token.",
    )
    retry_timeout_seconds: int = Field(
        default=120, description="How long delta-rs keeps retrying transient storage errors."
    )

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
        return self.shared_account(retry_timeout_seconds=self.retry_timeout_seconds)

    @staticmethod
    def _split(key: dg.AssetKey) -> tuple[str, str]:
        layer, *rest = key.path
        if not rest or any(not part or "/" in part for part in rest):
            raise ValueError(f"asset key {key.to_user_string()} must be [layer, table, ...]")
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}: asset keys start with one of {', '.join(LAYERS)}")
        return layer, "/".join(rest)

    def table_uri(self, key: dg.AssetKey) -> str:
        layer, path = self._split(key)
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

    def preflight(self, *keys: dg.AssetKey) -> None:
        for key in keys:
            self.check_access(self._split(key)[0])

    @contextlib.contextmanager
    def storage_errors(self, key: dg.AssetKey, action: str) -> Iterator[None]:
        self.preflight(key)
        try:
            yield
        except FileNotFoundError:
            # "Not materialized yet" already says what to do; it is not a storage failure.
            raise
        except OSError as err:
            layer, _ = self._split(key)
            raise translate_delta_error(err, self.account(layer), layer, f"{action} {self.display_uri(key)}") from err
