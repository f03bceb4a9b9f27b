"""Access checks shared by resources that simply belong to one user."""

from __future__ import annotations

import uuid
from typing import TypeVar

from django.db import models
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound

M = TypeVar("M", bound=models.Model)


def get_owned(model: type[M], pk: object, user: models.Model) -> M:
    """The object if it belongs to ``user``; otherwise a 404 that says nothing more."""
    try:
        key = uuid.UUID(str(pk))
    except ValueError:
        raise NotFound(_("No such %(thing)s.") % {"thing": model._meta.verbose_name}) from None
    found = model._default_manager.filter(pk=key, user=user).first()
    if found is None:
        raise NotFound(_("No such %(thing)s.") % {"thing": model._meta.verbose_name})
    return found
