"""Strict readers for environment variables.

Settings are the one place configuration enters, so a typo there should stop
the process at start-up rather than silently pick a default: a boolean that is
neither true nor false is an error, and every secret may instead be given as
``NAME_FILE`` (a path), so it can come from a mounted secret rather than the
process environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value, or the contents of the file ``NAME_FILE`` names."""
    file_path = os.environ.get(f"{name}_FILE")
    value = os.environ.get(name)
    if file_path and value is not None:
        raise ImproperlyConfigured(f"set {name} or {name}_FILE, not both")
    if file_path:
        try:
            return Path(file_path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_path}: {exc}") from exc
    if value is None or value == "":
        return default
    return value


def env_bool(name: str, *, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, *, default: int, minimum: int | None = None) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from exc
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_list(name: str, *, default: list[str]) -> list[str]:
    value = env_str(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def secret_in_data_dir(path: Path, make: Callable[[], str] | None = None) -> str:
    """Read, or make once, a random secret kept beside the data with owner-only access.

    The embedded default needs a stable secret key without anyone typing one; it
    must never be in the repository, and other local users must not read it.
    """
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o077
        if mode:
            raise ImproperlyConfigured(
                f"{path} is readable by other users; run: chmod 600 {path}"
            ) from None
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        secret = make() if make is not None else secrets.token_urlsafe(50)
        handle.write(secret)
    return secret


def env_choice(name: str, *, choices: tuple[str, ...], default: str) -> str:
    value = env_str(name) or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value
