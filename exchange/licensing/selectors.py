"""The access checks for devices and licences, used by every view that touches them."""

from __future__ import annotations

import uuid

from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound

from exchange.accounts.models import User
from exchange.licensing.models import Device, Licence


def device_get_for_owner(*, user: User, device_id: object) -> Device:
    device = Device.objects.filter(pk=str(device_id)[:64], user=user).first()
    if device is None:
        raise NotFound(_("No such device."))
    return device


def licence_get_for_buyer(*, user: User, licence_id: object) -> Licence:
    """A licence its buyer may see. Anyone else's is a 404: licence ids are not public."""
    try:
        key = uuid.UUID(str(licence_id))
    except ValueError:
        raise NotFound(_("No such licence.")) from None
    licence = Licence.objects.select_related("device", "work").filter(pk=key, buyer=user).first()
    if licence is None:
        raise NotFound(_("No such licence."))
    return licence
