from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db import models

from exchange.accounts.models import User
from exchange.audit.models import AuditEvent
from exchange.core.jsontypes import JSONObject


def audit_record(
    *, actor: User | AnonymousUser | None, action: str, target: models.Model,
    data: JSONObject | None = None,
) -> AuditEvent:
    if target.pk is None:
        raise ValueError(f"audit of an unsaved {target._meta.label}")
    return AuditEvent.objects.create(
        actor=actor if isinstance(actor, User) and actor.pk else None,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        data=data or {},
    )
