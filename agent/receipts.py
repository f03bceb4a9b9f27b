"""Receipts the agent owes the platform, kept until the platform has them.

A receipt is signed right after delivery and sent at once; if the platform is
unreachable it waits in the agent's folder and the daemon (or the next command) sends
it. The bytes each peer served are summed over every run of a resumed download.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

from agent.config import write_private
from agent.context import Agent
from agent.platform import PlatformError, PlatformUnreachableError

log = logging.getLogger(__name__)


def _served_path(agent: Agent, licence_id: str) -> Path:
    return agent.home.receipts_dir / f"{uuid.UUID(licence_id)}.served.json"


def served_so_far(agent: Agent, licence_id: str) -> dict[str, int]:
    try:
        data = json.loads(_served_path(agent, licence_id).read_text())
        return {str(k): int(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def add_served(agent: Agent, licence_id: str, served: dict[str, int]) -> dict[str, int]:
    """Add one run's verified bytes per peer to the running totals; return the totals."""
    totals = served_so_far(agent, licence_id)
    for peer, count in served.items():
        totals[peer] = totals.get(peer, 0) + count
    write_private(_served_path(agent, licence_id), json.dumps(totals).encode())
    return totals


def queue_receipt(agent: Agent, licence_id: str, token: str) -> Path:
    path = agent.home.receipts_dir / f"{uuid.UUID(licence_id)}.jwt"
    write_private(path, token.encode())
    return path


def receipt_sent(agent: Agent, licence_id: str) -> bool:
    """Has the platform accepted this licence's receipt already?"""
    return (agent.home.receipts_dir / f"{uuid.UUID(licence_id)}.sent").exists()


def send_receipt(agent: Agent, licence_id: str) -> str:
    """Send one queued receipt: 'sent', 'pending' (platform unreachable) or 'refused: …'."""
    path = agent.home.receipts_dir / f"{uuid.UUID(licence_id)}.jwt"
    try:
        agent.platform.receipt_send(licence_id=licence_id, receipt=path.read_text().strip())
    except PlatformUnreachableError:
        return "pending"
    except PlatformError as exc:
        if exc.status >= 500:
            return "pending"
        path.rename(path.with_suffix(".refused"))
        return f"refused: {exc}"
    path.rename(path.with_suffix(".sent"))
    return "sent"


def send_pending_receipts(agent: Agent) -> int:
    sent = 0
    for path in sorted(agent.home.receipts_dir.glob("*.jwt")):
        outcome = send_receipt(agent, path.stem)
        if outcome == "sent":
            sent += 1
        elif outcome.startswith("refused"):
            log.warning("receipt for %s %s", path.stem, outcome)
    return sent
