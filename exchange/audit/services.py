from __future__ import annotations

from typing import Any

from django.db import models

from exchange.audit.models import AuditEvent


def audit_record(
    *, actor: Any, action: str, target: models.Model, data: dict[str, Any] | None = None
) -> AuditEvent:
    if target.pk is None:
        raise ValueError(f"audit of an unsaved {target._meta.label}")
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        data=data or {},
    )
