"""Asking the payment provider again for a payout it has not answered.

A payout request moves the money to payout-pending and asks the provider once the
transaction commits. If that ask is lost (the process dies between the commit and the
call, the provider is down, a broker restarts), the payout waits in the queue for a
webhook that never comes. An admin's retry asks again with the same reference, amount
and currency. That is safe on our side whatever the provider does: the money is already
in payout-pending, and a webhook applies a state change once (a second "paid" for one
reference is ignored). It is safe on the provider's side because the interface requires
``payout_start`` to be idempotent per reference (``providers/base.py``): a real provider
is given the reference as its idempotency key.

Only a pending payout is retried. A returned payout's money is back in its holder's
account, and paying it again is the holder's new request, not an admin's retry.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.core.errors import ServiceError
from exchange.payments.models import Payout, PayoutState
from exchange.payments.providers import options_clean, provider_get


def payout_retry(*, payout: Payout, actor: User) -> bool:
    """Ask the provider again for ``payout`` if it is still pending: True if asked.

    Raises ``ServiceError`` for a payout that is not pending (nothing to retry) or whose
    provider is no longer the configured one (the retry would go to the wrong place)."""
    provider = provider_get()
    with transaction.atomic():
        locked = Payout.objects.select_for_update().get(pk=payout.pk)
        if locked.state != PayoutState.PENDING:
            raise ServiceError(
                _("Only a pending payout is retried; this one is %(state)s.")
                % {"state": locked.get_state_display()},
                code="not_pending", status_code=409)
        if locked.provider != provider.name:
            raise ServiceError(
                _("This payout went to the provider %(old)s, and %(new)s is configured now.")
                % {"old": locked.provider, "new": provider.name},
                code="provider_changed", status_code=409)
        audit_record(actor=actor, action="payout.retry", target=locked,
                     data={"provider_ref": locked.provider_ref})
        options = options_clean(provider, "payout", {})
        transaction.on_commit(lambda: provider.payout_start(
            reference=locked.provider_ref, amount_minor=locked.amount_minor,
            currency=locked.currency, options=options))
    return True
