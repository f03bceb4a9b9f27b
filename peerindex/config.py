"""The service's settings, from its environment (the platform's names where they match)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from peerindex.credentials import derive_key, parse_key


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    value = int(raw) if raw else default
    if value < minimum:
        raise ValueError(f"{name} is at least {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        url = env.get("REDIS_URL", "").strip()
        if not url:
            raise ValueError("the index needs REDIS_URL")
        secret = env.get("PEERMARK_INDEX_SECRET", "").strip()
        platform_key = env.get("PEERMARK_SECRET_KEY", "").strip()
        if secret:
            keys = [parse_key(secret)]
        elif platform_key:
            keys = [derive_key(platform_key)]
        else:
            raise ValueError("the index needs PEERMARK_INDEX_SECRET (or PEERMARK_SECRET_KEY)")
        previous = env.get("PEERMARK_INDEX_PREVIOUS_SECRET", "").strip()
        if previous:
            keys.append(parse_key(previous))
        timeout = _int(env, "PEERMARK_PEER_TIMEOUT_SECONDS", 90, 5)
        return cls(
            redis_url=url, keys=tuple(keys), peer_timeout=timeout,
            announce_interval=max(1, timeout // 3),
            allow_announced_host=_bool(env, "PEERMARK_PEERS_ALLOW_ANNOUNCED_HOST"),
            rate_per_address=_int(env, "PEERMARK_INDEX_RATE_PER_ADDRESS", 300, 0),
            rate_per_credential=_int(env, "PEERMARK_INDEX_RATE_PER_CREDENTIAL", 30, 0),
        )
