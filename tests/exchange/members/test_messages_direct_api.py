"""End-to-end encrypted messages on the platform's side: the recipient's devices, and the
relay that holds a sealed copy for an offline device. From the attacker's side: forged and
foreign signatures, another member's device, a blocked sender, replays, floods, oversized
envelopes, and another member fetching or deleting someone's relayed messages. The stored
row must hold no plaintext. Expected values are written out by hand."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from exchange.community.models import Notification
from exchange.messaging.models import Block, Message, RelayedMessage
from exchange.peers.models import Peer
from licensing.core import DeviceKeys, new_message_id, read_direct_message, seal_direct_message
from licensing.core.direct_messages import open_direct_message

SECRET = "the harbour key is under the blue stone"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings: Any) -> None:
    cache.clear()
    settings.MESSAGING_SEND_RATE = "100/min"


@pytest.fixture
def bob_keys(bob, device_of):
    return device_of(bob, "bob laptop")[0]


@pytest.fixture
def rita_keys(rita, device_of):
    return device_of(rita, "rita studio")[0]


def _seal(keys: DeviceKeys, to_keys: DeviceKeys, *, sender: str = "bob", recipient: str = "rita",
          body: str = SECRET, mid: str | None = None, at: int | None = None) -> str:
    return seal_direct_message(keys, sender=sender, recipient=recipient,
                               recipient_device=to_keys.public, message_id=mid or new_message_id(),
                               body=body, subject="", issued_at=at or int(time.time()))


def _relay(client: Any, document: Any, *, key: str | None = None) -> Any:
    return client.post("/api/v1/messages/relayed/", {"document": document}, format="json",
                       HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()))


# --- the recipient's devices ---------------------------------------------------------------


def test_devices_lists_keys_and_the_live_endpoint_only(api, bob, rita, device_of) -> None:
    studio_keys, studio = device_of(rita, "studio")
    phone_keys, phone = device_of(rita, "phone")
    _old_keys, old = device_of(rita, "old")
    old.revoked_at = timezone.now()
    old.save()
    Peer.objects.create(device=studio, user=rita, host="127.0.0.1", port=7001,
                        last_seen_at=timezone.now())
    Peer.objects.create(device=phone, user=rita, host="::1", port=7002,
                        last_seen_at=timezone.now() - timezone.timedelta(hours=2))
    response = api(bob).get("/api/v1/members/rita/devices/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["username"] == "rita"
    by_id = {d["device_id"]: d for d in body["devices"]}
    assert set(by_id) == {studio.device_id, phone.device_id}  # the revoked one is not offered
    assert by_id[studio.device_id]["endpoint"] == "http://127.0.0.1:7001"
    assert by_id[phone.device_id]["endpoint"] is None  # silent for two hours: offline
    assert by_id[studio.device_id]["signing_key"] == studio_keys.public.to_b64url()["sig"]
    assert by_id[phone.device_id]["kem_key"] == phone_keys.public.to_b64url()["kem"]


def test_devices_of_a_member_who_blocked_you_is_the_messages_refusal(api, bob, rita,
                                                                    rita_keys) -> None:
    Block.objects.create(blocker=rita, blocked=bob)
    response = api(bob).get("/api/v1/members/rita/devices/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "blocked"


@pytest.mark.parametrize("name", ["nobody", "x" * 151])
def test_devices_of_an_unknown_member_is_404(api, bob, name) -> None:
    assert api(bob).get(f"/api/v1/members/{name}/devices/").status_code == 404


def test_devices_needs_a_signed_in_member(api, rita, rita_keys) -> None:
    assert api(None).get("/api/v1/members/rita/devices/").status_code in (401, 403)


# --- the relay ----------------------------------------------------------------------------


def test_a_relayed_message_is_stored_sealed_and_the_recipient_told_nothing_of_it(
        api, bob, rita, bob_keys, rita_keys, django_capture_on_commit_callbacks) -> None:
    document = _seal(bob_keys, rita_keys)
    with django_capture_on_commit_callbacks(execute=True):
        response = _relay(api(bob), document)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["mode"], body["sender"], body["recipient"], body["sender_device"],
            body["recipient_device"], body["size"]) == (
        "relayed", "bob", "rita", bob_keys.device_id, rita_keys.device_id, len(document))
    row = RelayedMessage.objects.get()
    # the platform holds ciphertext only: the text is nowhere in the row
    for value in (row.document, row.message_id, str(row.size)):
        assert "harbour" not in value
        assert SECRET not in value
    assert Message.objects.count() == 0  # nothing in the readable platform messages
    note = Notification.objects.get(recipient=rita)
    assert note.title == "New encrypted message from bob"
    assert "harbour" not in note.body
    assert "harbour" not in note.title
    # and only rita's device opens what it holds
    fetched = api(rita).get("/api/v1/messages/relayed/").json()["results"]
    assert [m["document"] for m in fetched] == [document]
    envelope = read_direct_message(fetched[0]["document"], sender_device=bob_keys.public,
                                   recipient_device_id=rita_keys.device_id,
                                   now=int(time.time()))
    assert open_direct_message(envelope, device=rita_keys).body == SECRET


def test_acknowledging_deletes_and_only_the_recipient_may(api, bob, rita, carol, bob_keys,
                                                          rita_keys) -> None:
    relayed_id = _relay(api(bob), _seal(bob_keys, rita_keys)).json()["id"]
    for outsider in (bob, carol):  # the sender too: it is no longer theirs
        assert api(outsider).delete(f"/api/v1/messages/relayed/{relayed_id}/").status_code == 404
    assert RelayedMessage.objects.count() == 1
    assert api(rita).delete(f"/api/v1/messages/relayed/{relayed_id}/").status_code == 204
    assert RelayedMessage.objects.count() == 0
    assert api(rita).delete(f"/api/v1/messages/relayed/{relayed_id}/").status_code == 404
    assert api(rita).delete("/api/v1/messages/relayed/not-a-uuid/").status_code == 404


def test_another_member_fetching_relayed_messages_sees_none(api, bob, rita, carol, bob_keys,
                                                            rita_keys) -> None:
    _relay(api(bob), _seal(bob_keys, rita_keys))
    assert api(carol).get("/api/v1/messages/relayed/").json()["results"] == []
    assert api(bob).get("/api/v1/messages/relayed/").json()["results"] == []  # the sender's
    # asking for rita's device by its id does not help either
    response = api(carol).get(f"/api/v1/messages/relayed/?device={rita_keys.device_id}")
    assert response.json()["results"] == []
    assert api(None).get("/api/v1/messages/relayed/").status_code in (401, 403)


def test_the_same_envelope_twice_is_stored_once(api, bob, rita, bob_keys, rita_keys,
                                                django_capture_on_commit_callbacks) -> None:
    document = _seal(bob_keys, rita_keys)
    with django_capture_on_commit_callbacks(execute=True):
        first = _relay(api(bob), document)
        again = _relay(api(bob), document)  # a new key: the service itself spots the replay
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert RelayedMessage.objects.count() == 1
    assert Notification.objects.filter(recipient=rita).count() == 1


def test_another_envelope_under_a_held_message_id_is_a_conflict(api, bob, rita, bob_keys,
                                                                rita_keys) -> None:
    mid = new_message_id()
    assert _relay(api(bob), _seal(bob_keys, rita_keys, mid=mid)).status_code == 201
    response = _relay(api(bob), _seal(bob_keys, rita_keys, mid=mid, body="changed"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "replayed"
    assert RelayedMessage.objects.count() == 1


def test_one_message_to_two_devices_counts_and_notifies_once(
        api, bob, rita, bob_keys, device_of, settings,
        django_capture_on_commit_callbacks) -> None:
    settings.MESSAGING_SEND_RATE = "1/min"
    studio, _ = device_of(rita, "studio")
    phone, _ = device_of(rita, "phone")
    mid = new_message_id()
    with django_capture_on_commit_callbacks(execute=True):
        assert _relay(api(bob), _seal(bob_keys, studio, mid=mid)).status_code == 201
        assert _relay(api(bob), _seal(bob_keys, phone, mid=mid)).status_code == 201
    assert Notification.objects.filter(recipient=rita).count() == 1
    # a second message is over the rate of one a minute
    response = _relay(api(bob), _seal(bob_keys, studio))
    assert response.status_code == 429
    assert RelayedMessage.objects.count() == 2


def test_a_flood_is_rate_limited_and_stores_nothing_past_the_limit(api, bob, rita, bob_keys,
                                                                   rita_keys, settings) -> None:
    settings.MESSAGING_SEND_RATE = "3/min"
    statuses = [_relay(api(bob), _seal(bob_keys, rita_keys)).status_code for _ in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
    assert RelayedMessage.objects.count() == 3


def test_a_blocked_sender_cannot_use_the_relay(api, bob, rita, bob_keys, rita_keys) -> None:
    Block.objects.create(blocker=rita, blocked=bob)
    response = _relay(api(bob), _seal(bob_keys, rita_keys))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "blocked"
    assert RelayedMessage.objects.count() == 0


def test_a_forged_signature_is_refused(api, bob, rita, bob_keys, rita_keys) -> None:
    document = _seal(bob_keys, rita_keys)
    head, payload, _signature = document.split(".")
    forged = f"{head}.{payload}.{'A' * 85}A"
    response = _relay(api(bob), forged)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_document"
    assert RelayedMessage.objects.count() == 0


def test_an_envelope_signed_by_another_members_device_is_refused(api, bob, carol, rita,
                                                                 device_of, rita_keys) -> None:
    carol_keys, _ = device_of(carol)
    # carol's device signs, naming bob as the sender; bob (or carol) posts it
    document = _seal(carol_keys, rita_keys, sender="bob")
    assert _relay(api(bob), document).status_code == 400
    assert _relay(api(carol), document).status_code == 400  # names bob, not carol
    assert RelayedMessage.objects.count() == 0


def test_an_unregistered_device_cannot_sign(api, bob, rita, rita_keys) -> None:
    stranger = DeviceKeys.generate()
    response = _relay(api(bob), _seal(stranger, rita_keys))
    assert response.status_code == 400
    assert RelayedMessage.objects.count() == 0


def test_sealed_to_a_device_of_another_member_is_refused(api, bob, rita, carol, bob_keys,
                                                         device_of) -> None:
    carol_keys, _ = device_of(carol)
    # names rita as the recipient but is sealed to carol's device
    response = _relay(api(bob), _seal(bob_keys, carol_keys, recipient="rita"))
    assert response.status_code == 400
    assert RelayedMessage.objects.count() == 0


def test_to_oneself_or_to_nobody_is_refused(api, bob, bob_keys, device_of) -> None:
    other, _ = device_of(bob, "desktop")
    assert _relay(api(bob), _seal(bob_keys, other, recipient="bob")).status_code == 400
    assert _relay(api(bob), _seal(bob_keys, other, recipient="nobody")).status_code == 404
    assert RelayedMessage.objects.count() == 0


def test_an_envelope_dated_in_the_future_is_refused(api, bob, rita, bob_keys, rita_keys) -> None:
    response = _relay(api(bob), _seal(bob_keys, rita_keys, at=int(time.time()) + 3600))
    assert response.status_code == 400


@pytest.mark.parametrize("document", [
    "", "not a token", "a.b.c", 42, None, ["x"], "é.é.é", "A" * (48 * 1024 + 1),
])
def test_garbage_and_oversized_documents_are_refused(api, bob, document) -> None:
    response = _relay(api(bob), document)
    assert response.status_code == 400, response.content
    assert RelayedMessage.objects.count() == 0


def test_a_relay_post_needs_an_idempotency_key(api, bob, rita, bob_keys, rita_keys) -> None:
    response = api(bob).post("/api/v1/messages/relayed/",
                             {"document": _seal(bob_keys, rita_keys)}, format="json")
    assert response.status_code == 400
    assert RelayedMessage.objects.count() == 0
