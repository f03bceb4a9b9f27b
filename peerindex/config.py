"""The service's settings, from its environment (the platform's names where they match)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from peerindex.credentials import derive_key, parse_key


def _str(env: Mapping[str, str], name: str) -> str:
    """A setting, or the contents of the file ``NAME_FILE`` names (a mounted secret), as
    the platform reads its own."""
    path = env.get(f"{name}_FILE", "").strip()
    if path:
        if env.get(name, "").strip():
            raise ValueError(f"give {name} or {name}_FILE, not both")
        with open(path, encoding="utf-8") as file:
            return file.read().strip()
    return env.get(name, "").strip()


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = _str(env, name)
    value = int(raw) if raw else default
    if value < minimum:
        raise ValueError(f"{name} is at least {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    return _str(env, name).lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Config:
    redis_url: str
    keys: tuple[bytes, ...]
    peer_timeout: int = 90
    announce_interval: int = 60
    allow_announced_host: bool = False
    #: requests a second from one address, and from one credential (0: no limit)
    rate_per_address: int = 300
    rate_per_credential: int = 30
    #: how long a work's holders, once read, answer its lookups (0: every lookup reads)
    sources_cache_ms: int = 1000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        url = _str(env, "REDIS_URL")
        if not url:
            raise ValueError("the index needs REDIS_URL")
        secret = _str(env, "PEERMARK_INDEX_SECRET")
        platform_key = _str(env, "PEERMARK_SECRET_KEY")
        if secret:
            keys = [parse_key(secret)]
        elif platform_key:
            keys = [derive_key(platform_key)]
        else:
            raise ValueError("the index needs PEERMARK_INDEX_SECRET (or PEERMARK_SECRET_KEY)")
        previous = _str(env, "PEERMARK_INDEX_PREVIOUS_SECRET")
        if previous:
            keys.append(parse_key(previous))
        timeout = _int(env, "PEERMARK_PEER_TIMEOUT_SECONDS", 90, 5)
        return cls(
            redis_url=url, keys=tuple(keys), peer_timeout=timeout,
            announce_interval=max(1, timeout // 3),
            allow_announced_host=_bool(env, "PEERMARK_PEERS_ALLOW_ANNOUNCED_HOST"),
            rate_per_address=_int(env, "PEERMARK_INDEX_RATE_PER_ADDRESS", 300, 0),
            rate_per_credential=_int(env, "PEERMARK_INDEX_RATE_PER_CREDENTIAL", 30, 0),
            sources_cache_ms=_int(env, "PEERMARK_INDEX_SOURCES_CACHE_MS", 1000, 0),
        )
