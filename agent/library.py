"""The agent's own licences, purchases in progress and known titles, kept in its folder.

A purchase's Idempotency-Key is written before the request is sent and removed only
once the licence is safely stored, so a crash or a lost response mid-purchase is retried
with the same key: the platform replays the first answer instead of charging again.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.config import write_private


@dataclass(frozen=True)
class OwnedLicence:
    licence_id: str
    work_id: str
    title: str
    content_type: str
    token: str
    manifest: str
    purchase_id: str
    expires_at: str

    @classmethod
    def from_purchase(cls, body: dict[str, object], work: dict[str, object]) -> OwnedLicence:
        licence = body["licence"]
        purchase = body["purchase"]
        if not isinstance(licence, dict) or not isinstance(purchase, dict):
            raise ValueError("the platform's purchase answer lacks the licence or purchase")
        return cls(
            licence_id=str(licence["id"]), work_id=str(purchase["work"]),
            title=str(work.get("title", "")), content_type=str(work.get("content_type", "")),
            token=str(licence["token"]), manifest=str(body["manifest"]),
            purchase_id=str(purchase["id"]), expires_at=str(licence["expires_at"]),
        )


    @classmethod
    def from_platform(cls, licence: dict[str, object], work: dict[str, object],
                      manifest: str) -> OwnedLicence:
        """A licence the platform holds for this device (bought on the web), with the
        work's current signed manifest."""
        return cls(
            licence_id=str(licence["id"]), work_id=str(licence["work"]),
            title=str(work.get("title", "")), content_type=str(work.get("content_type", "")),
            token=str(licence["token"]), manifest=manifest,
            purchase_id=str(licence.get("purchase") or ""),
            expires_at=str(licence["expires_at"]),
        )


class LicenceBook:
    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def _path(self, licence_id: str) -> Path:
        return self._folder / f"{uuid.UUID(licence_id)}.json"

    def save(self, licence: OwnedLicence) -> None:
        write_private(self._path(licence.licence_id), json.dumps(asdict(licence)).encode())

    def all(self) -> list[OwnedLicence]:
        found = []
        for path in sorted(self._folder.glob("*.json")):
            try:
                found.append(OwnedLicence(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # a damaged file is skipped, never fatal
        return found

    def for_work(self, work_id: str) -> OwnedLicence | None:
        matches = [lic for lic in self.all() if lic.work_id == work_id]
        return max(matches, key=lambda lic: lic.expires_at) if matches else None

    # --- purchases in progress ----------------------------------------------------------

    def _pending(self, work_id: str) -> Path:
        return self._folder / "pending" / f"{uuid.UUID(work_id)}.key"

    def purchase_key(self, work_id: str) -> str:
        """The Idempotency-Key for buying ``work_id``: the same one until it succeeds."""
        path = self._pending(work_id)
        if path.exists():
            return path.read_text().strip()
        key = f"agent-buy-{uuid.uuid4()}"
        write_private(path, key.encode())
        return key

    def purchase_done(self, work_id: str) -> None:
        self._pending(work_id).unlink(missing_ok=True)


class WorkTitles:
    """Titles of works held without a licence (the seed agent's), so ``status`` can name
    them without asking the platform. One small JSON file, rewritten with only the works
    still held, so it never outgrows the store."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def all(self) -> dict[str, str]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # none yet, or damaged: titles are a convenience, never fatal
        if not isinstance(data, dict):
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def keep(self, titles: dict[str, str], *, held: set[str]) -> None:
        """Remember ``titles`` of held works, forget works no longer held."""
        known = self.all()
        wanted = {k: v for k, v in {**known, **titles}.items() if k in held}
        if wanted != known:
            write_private(self._path, json.dumps(wanted, sort_keys=True).encode())
