"""The agent's per-user folder: its config, device keys, pieces, licences and outbox.

Default ``$PEERMARK_AGENT_HOME``, else ``$XDG_CONFIG_HOME/peermark-agent``, else
``~/.config/peermark-agent``; ``--data-dir`` overrides. The config holds an API token,
so it is written with owner-only permissions, atomically.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from agent.files import write_atomically


class ConfigError(Exception):
    pass


def default_data_dir() -> Path:
    home = os.environ.get("PEERMARK_AGENT_HOME")
    if home:
        return Path(home).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "peermark-agent"


@dataclass
class AgentConfig:
    platform_url: str = "http://127.0.0.1:8000"
    token: str = ""
    username: str = ""
    device_name: str = field(default_factory=socket.gethostname)
    listen_host: str = "127.0.0.1"
    listen_port: int = 7070
    # The host peers should connect to, if not the address the platform sees.
    public_host: str = ""
    # Peers to ask when the platform is unreachable (Gnutella-style fallback).
    known_peers: list[str] = field(default_factory=list)
    download_limit_bps: int = 0
    upload_limit_bps: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> AgentConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(sorted(unknown))}")
        config = cls(**data)
        if not isinstance(config.listen_port, int) or not 0 <= config.listen_port <= 65535:
            raise ConfigError("listen_port must be 0 to 65535")
        return config


class AgentHome:
    """The folder and everything the agent keeps in it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def device_key_path(self) -> Path:
        return self.root / "device.key"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def licences_dir(self) -> Path:
        return self.root / "licences"

    @property
    def library_dir(self) -> Path:
        return self.root / "library"

    @property
    def outbox_path(self) -> Path:
        return self.root / "outbox.sqlite3"

    @property
    def titles_path(self) -> Path:
        """Titles of held works the agent has no licence for (``library.WorkTitles``)."""
        return self.root / "titles.json"

    @property
    def receipts_dir(self) -> Path:
        return self.root / "receipts"

    @property
    def index_credential_path(self) -> Path:
        """The index credential in use (index_client.py), shared by the daemon and each
        ``get``, so a ``get`` does not ask the platform for one of its own."""
        return self.root / "index-credential.json"

    @property
    def trust_dir(self) -> Path:
        """The platform's JWKS and the newest revocation list, kept for offline checks."""
        return self.root / "trust"

    def ensure(self) -> None:
        for folder in (self.root, self.store_dir, self.licences_dir, self.library_dir,
                       self.receipts_dir, self.trust_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def load_config(self) -> AgentConfig:
        if not self.config_path.exists():
            return AgentConfig()
        try:
            data = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {self.config_path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{self.config_path} is not a JSON object")
        return AgentConfig.from_mapping(data)

    def save_config(self, config: AgentConfig) -> None:
        self.ensure()
        write_private(self.config_path, config.to_json().encode())


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` atomically to ``path`` with owner-only permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomically(path, data, mode=0o600)
