"""Index credentials from the platform, tried from each side: a member's own device only,
never a revoked one or a disabled account, and revocation that only the holder can ask
for. The credential is checked with the index's own verifier and a key worked out here."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time

import pytest

from peerindex import credentials

pytestmark = pytest.mark.django_db
SECRET = "ab" * 32
INDEX_URL = "http://127.0.0.1:8100"


@pytest.fixture
def offered(live_index, settings):
    settings.INDEX_URL = INDEX_URL
    settings.INDEX_SECRET = SECRET
    return live_index


def _ask(client, device_id: str):
    return client.post("/api/v1/peers/index-credential/", {"device": device_id}, format="json")


def test_a_member_gets_a_credential_for_their_own_device(offered, bob, device_of, api) -> None:
    _, device = device_of(bob)
    before = int(time.time())
    response = _ask(api(bob), device.device_id)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["index_url"] == INDEX_URL
    assert body["interval"] == 30
    assert body["reannounce"] == 1800
    claims = credentials.verify([bytes.fromhex(SECRET)], body["token"], now=before)
    assert (claims.user, claims.device) == (bob.pk, device.device_id)
    assert before + 3600 <= claims.exp <= int(time.time()) + 3600
    # the MAC is HMAC-SHA256 over "pmi1.<claims>" under the configured key
    prefix, part, mac = body["token"].split(".")
    expected = hmac.new(bytes.fromhex(SECRET), f"{prefix}.{part}".encode(),
                        hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4)) == expected


def test_the_key_derives_from_the_secret_key_without_an_index_secret(live_index, settings,
                                                                     bob, device_of,
                                                                     api) -> None:
    settings.INDEX_URL = INDEX_URL
    settings.INDEX_SECRET = ""
    _, device = device_of(bob)
    token = _ask(api(bob), device.device_id).json()["token"]
    derived = hmac.new(settings.SECRET_KEY.encode(), b"peermark index credential v1",
                       hashlib.sha256).digest()
    assert credentials.verify([derived], token, now=int(time.time())).device == device.device_id


def test_not_for_another_members_device(offered, bob, carol, device_of, api) -> None:
    _, bobs = device_of(bob)
    response = _ask(api(carol), bobs.device_id)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_device"


def test_not_for_a_revoked_device(offered, bob, device_of, api) -> None:
    from exchange.licensing.services import device_revoke

    _, device = device_of(bob)
    device_revoke(device=device, actor=bob)
    response = _ask(api(bob), device.device_id)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "device_revoked"


def test_not_signed_in(offered, bob, device_of, api) -> None:
    _, device = device_of(bob)
    assert _ask(api(None), device.device_id).status_code == 401


def test_not_offered_without_an_index_url(live_index, settings, bob, device_of, api) -> None:
    settings.INDEX_URL = ""
    _, device = device_of(bob)
    response = _ask(api(bob), device.device_id)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "index_not_offered"


@pytest.mark.parametrize("device_id", ["", "x" * 65, 7, None])
def test_a_malformed_device(offered, bob, api, device_id) -> None:
    response = api(bob).post("/api/v1/peers/index-credential/", {"device": device_id},
                             format="json")
    assert response.status_code == 400
    assert "device" in response.json()["error"]["fields"]


def test_only_the_holder_revokes_a_credential(offered, bob, carol, device_of, api) -> None:
    _, device = device_of(bob)
    token = _ask(api(bob), device.device_id).json()["token"]
    jti = credentials.verify([bytes.fromhex(SECRET)], token, now=int(time.time())).jti

    assert api(carol).post("/api/v1/peers/index-credential/revoke/", {"token": token},
                           format="json").status_code == 204
    assert offered.zscore("pmi:revoked", f"c:{jti}") is None  # not carol's to revoke

    for _ in range(2):  # twice: the same answer
        assert api(bob).post("/api/v1/peers/index-credential/revoke/", {"token": token},
                             format="json").status_code == 204
    until = offered.zscore("pmi:revoked", f"c:{jti}")
    assert until is not None
    assert int(until) > time.time()


def test_a_revoked_credential_outlives_a_redis_that_forgot_it(offered, bob, device_of,
                                                               api) -> None:
    """A Redis restarted without its AOF has lost the revocation set: the minute's sync
    publishes the logged-out credential again from the database, until it runs out."""
    from exchange.peers.live_index import revocations_sync
    from exchange.peers.models import RevokedIndexCredential

    _, device = device_of(bob)
    token = _ask(api(bob), device.device_id).json()["token"]
    claims = credentials.verify([bytes.fromhex(SECRET)], token, now=int(time.time()))
    assert api(bob).post("/api/v1/peers/index-credential/revoke/", {"token": token},
                         format="json").status_code == 204
    # the sync lifts a device the database does not hold revoked, not the credential
    offered.zadd("pmi:revoked", {"d:not-revoked-here": 2**53})
    revocations_sync()
    assert offered.zscore("pmi:revoked", "d:not-revoked-here") is None
    assert offered.zscore("pmi:revoked", f"c:{claims.jti}") == claims.exp
    offered.delete("pmi:revoked")  # what a restart without the AOF leaves
    revocations_sync()
    assert offered.zscore("pmi:revoked", f"c:{claims.jti}") == claims.exp

    # one that has run out is dropped from the database, and not published
    RevokedIndexCredential.objects.filter(jti=claims.jti).update(
        expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    offered.delete("pmi:revoked")
    revocations_sync()
    assert offered.zscore("pmi:revoked", f"c:{claims.jti}") is None
    assert not RevokedIndexCredential.objects.filter(jti=claims.jti).exists()


def test_logging_out_revokes_a_credential_signed_with_the_previous_key(
        offered, settings, bob, carol, device_of, api) -> None:
    """After a key rotation the index still honours credentials the old key signed (it is
    given both keys): the platform, given the old key too, must revoke them on logout."""
    previous = "cd" * 32
    _, device = device_of(bob)
    issued = int(time.time())
    old = credentials.mint(bytes.fromhex(previous), user=bob.pk, device=device.device_id,
                           now=issued, ttl=600)
    jti = credentials.verify([bytes.fromhex(previous)], old, now=issued).jti

    def revoke(member) -> int:
        return api(member).post("/api/v1/peers/index-credential/revoke/", {"token": old},
                                format="json").status_code

    assert revoke(bob) == 204  # not known to a platform that only has the new key
    assert offered.zscore("pmi:revoked", f"c:{jti}") is None
    settings.INDEX_PREVIOUS_SECRET = previous
    assert revoke(carol) == 204
    assert offered.zscore("pmi:revoked", f"c:{jti}") is None  # still not carol's
    assert revoke(bob) == 204
    assert offered.zscore("pmi:revoked", f"c:{jti}") == issued + 600


def test_a_revoked_device_and_a_disabled_account_reach_the_index(
        offered, bob, device_of, django_capture_on_commit_callbacks) -> None:
    from exchange.licensing.services import device_revoke

    _, device = device_of(bob)
    with django_capture_on_commit_callbacks(execute=True):
        device_revoke(device=device, actor=bob)
    assert offered.zscore("pmi:revoked", f"d:{device.device_id}") is not None
    with django_capture_on_commit_callbacks(execute=True):
        bob.is_active = False
        bob.save()
    assert offered.zscore("pmi:revoked", f"u:{bob.pk}") is not None
    with django_capture_on_commit_callbacks(execute=True):
        bob.is_active = True
        bob.save()
    assert offered.zscore("pmi:revoked", f"u:{bob.pk}") is None


def test_minting_is_bounded_per_device_and_says_when_to_ask_again(
        offered, settings, bob, device_of, api) -> None:
    from django.core.cache import cache

    cache.clear()  # counts of earlier tests' devices, whose keys a database may reuse
    settings.INDEX_CREDENTIAL_RATE = "2/hour"
    _, device = device_of(bob)
    _, other = device_of(bob, "phone")
    client = api(bob)
    assert [_ask(client, device.device_id).status_code for _ in range(2)] == [201, 201]
    refused = _ask(client, device.device_id)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert _ask(client, other.device_id).status_code == 201  # another device: its own count
