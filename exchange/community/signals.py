"""How community hears that a work went on sale, without the catalogue knowing about it.

The catalogue records every state change of a work in the audit log; the move to on sale
is the ``work.ready`` event, written in the same transaction as the status change. A
receiver on that row queues the announcement once that transaction commits, so a
rolled-back packaging announces nothing, and the catalogue imports nothing of ours.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from exchange.audit.models import AuditEvent

WORK_READY = "work.ready"


def on_audit_event(sender: type[AuditEvent], instance: AuditEvent, created: bool,
                   **_kwargs: Any) -> None:
    del sender  # only AuditEvent is connected
    if not created or instance.action != WORK_READY or instance.target_type != "catalogue.work":
        return
    work_id = instance.target_id
    transaction.on_commit(lambda: _queue_announcement(work_id))


def _queue_announcement(work_id: str) -> None:
    from exchange.community.tasks import work_announce_task

    work_announce_task.delay(work_id)


def remember_language(sender: object, request: Any, user: Any, **_kwargs: Any) -> None:
    """On a portal login, keep the language the member reads the portal in, for their
    emails (a notification is sent later, by a task, with no request to ask)."""
    del sender
    from exchange.community.services import email_language_set

    language = getattr(request, "LANGUAGE_CODE", "") if request is not None else ""
    if user is not None and getattr(user, "pk", None) is not None:
        email_language_set(user=user, language=language)
