"""Messages under concurrency, on PostgreSQL: real threads, real row locks."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from exchange.core.rate_limits import RateLimitedError
from exchange.messaging.models import Conversation, Message
from exchange.messaging.services import message_send
from tests.support.races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings: Any) -> None:
    cache.clear()
    settings.MESSAGING_SEND_RATE = "100/min"


def test_concurrent_first_messages_cannot_pass_the_daily_cap(bob, rita, rob, carol,
                                                             admin_user, settings) -> None:
    settings.MESSAGING_NEW_CONVERSATIONS_PER_DAY = 1
    names = ["rita", "rob", "carol", "admin"]
    results = race(4, lambda i: message_send(sender=bob, to=names[i], body="hello"))
    sent = [r for r in results if isinstance(r, Message)]
    refused = [r for r in results if isinstance(r, RateLimitedError)]
    assert (len(sent), len(refused)) == (1, 3), results
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 1


def test_concurrent_first_messages_to_one_member_share_one_conversation(
        bob, rita, settings) -> None:
    settings.MESSAGING_NEW_CONVERSATIONS_PER_DAY = 1
    results = race(4, lambda i: message_send(sender=bob, to="rita", body=f"hello {i}"))
    assert all(isinstance(r, Message) for r in results), results
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 4


def test_both_members_writing_first_at_once_share_one_conversation(bob, rita) -> None:
    pairs = [(bob, "rita"), (rita, "bob")] * 2
    results = race(4, lambda i: message_send(sender=pairs[i][0], to=pairs[i][1], body="hi"))
    assert all(isinstance(r, Message) for r in results), results
    assert Conversation.objects.count() == 1
    assert len({r.conversation_id for r in results}) == 1
