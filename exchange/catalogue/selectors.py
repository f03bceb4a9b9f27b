"""Reads of the catalogue that several views share, and the one access check for works."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound, PermissionDenied

from exchange.accounts.models import User
from exchange.catalogue.models import Work, WorkStatus


def works_visible_to(user: User | AnonymousUser) -> QuerySet[Work]:
    """Everyone sees works on sale; owners also see their own in any state; admins see all."""
    works = Work.objects.select_related("owner")
    if getattr(user, "is_platform_admin", False):
        return works
    if user.is_authenticated:
        return works.filter(Q(status=WorkStatus.READY) | Q(owner=user))
    return works.filter(status=WorkStatus.READY)


def works_owned_by(user: User) -> QuerySet[Work]:
    return Work.objects.select_related("owner").filter(owner=user)


def _parse_id(work_id: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(work_id))
    except ValueError:
        raise NotFound(_("No such work.")) from None


def work_get_visible(*, user: User | AnonymousUser, work_id: object) -> Work:
    try:
        return works_visible_to(user).get(pk=_parse_id(work_id))
    except Work.DoesNotExist:
        raise NotFound(_("No such work.")) from None


def work_get_for_owner(*, user: User | AnonymousUser, work_id: object) -> Work:
    """The work, if ``user`` may change it.

    Another user's work is a 403 if they can see it (it is on sale), else a 404, so that
    the answer never reveals a work that is not public.
    """
    work = work_get_visible(user=user, work_id=work_id)
    if work.owner_id != user.pk:
        raise PermissionDenied(_("You can change only your own works."))
    return work
