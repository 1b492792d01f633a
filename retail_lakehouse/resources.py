"""Resources shared by several layers."""


import os
import secrets
from pathlib import Path

import dagster as dg


class CardTokenizer(dg.ConfigurableResource):
    """Holds the secret key for card tokens (SPEC §4 "Bronze", PCI).

    `key` comes from `RETAIL_LAKEHOUSE_TOKEN_KEY` through `EnvVar`, so the UI shows the variable's
    name, never its value. Without it (local mode only) a random key is generated once into
    `key_file`, outside the work tree, and reused: tokens stay stable across runs.
    """

    key: str | None = None
    key_file: str | None = None

    def key_bytes(self) -> bytes:
        if self.key:
            return self.key.encode()
        if not self.key_file:
            raise ValueError("no card-token key: set RETAIL_LAKEHOUSE_TOKEN_KEY")
        path = Path(self.key_file)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return path.read_text().strip().encode()
