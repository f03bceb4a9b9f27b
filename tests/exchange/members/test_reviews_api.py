"""Reviews over the API, from the attacker's side: who may review, edit, reply, report
and moderate, and what bad input does. Expected values are worked out by hand."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.core.cache import cache

from exchange.audit.models import AuditEvent
from exchange.reviews.models import Reply, Report, Review

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    cache.clear()


@pytest.fixture
def work(rita: Any, make_work: Any) -> Any:
    return make_work(rita, title="Harbour at dawn")


@pytest.fixture
def buy(fund: Any, device_of: Any) -> Any:
    """``buy(user, work)``: fund the wallet, register a device, buy; the licence."""
    from exchange.purchases.services import purchase_create

    def make(user: Any, work: Any, device_name: str = "laptop") -> Any:
        fund(user, 10_000)
        _keys, device = device_of(user, device_name)
        purchase = purchase_create(buyer=user, work_id=work.pk, device_id=device.device_id)
        return purchase.licence

    return make


@pytest.fixture
def bobs_licence(bob: Any, work: Any, buy: Any) -> Any:
    return buy(bob, work)


@pytest.fixture
def bobs_review(bob: Any, work: Any, bobs_licence: Any) -> Any:
    from exchange.reviews.services import review_create

    return review_create(author=bob, work_id=work.pk, rating=4, body="Calm and clear.")


def _key() -> dict[str, str]:
    return {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())}


def _post(client: Any, url: str, body: object, **headers: str) -> Any:
    return client.post(url, body, format="json", **(headers or _key()))


def _reviews_url(work: Any) -> str:
    return f"/api/v1/works/{work.pk}/reviews/"


# --- writing a review ----------------------------------------------------------------


def test_a_licence_holder_reviews_once_and_the_owner_is_notified(
        api, bob, rita, work, bobs_licence, django_capture_on_commit_callbacks) -> None:
    from exchange.community.models import Notification

    with django_capture_on_commit_callbacks(execute=True):
        response = _post(api(bob), _reviews_url(work), {"rating": 5, "body": "Lovely light."})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["author"], body["rating"], body["body"], body["hidden"], body["reply"]) == \
        ("bob", 5, "Lovely light.", False, None)
    assert body["edited_at"] is None
    note = Notification.objects.get(recipient=rita)
    assert note.kind == "review"
    assert note.title == "bob reviewed “Harbour at dawn” (5/5)"
    assert note.url == f"/works/{work.pk}/#review-{body['id']}"
    assert AuditEvent.objects.filter(action="review.create", target_id=body["id"]).count() == 1


def test_a_second_review_of_the_same_work_is_refused(api, bob, work, bobs_review) -> None:
    response = _post(api(bob), _reviews_url(work), {"rating": 1, "body": "Again."})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_reviewed"
    assert Review.objects.count() == 1


def test_a_second_device_licence_still_allows_only_one_review(
        api, bob, work, bobs_review, buy) -> None:
    buy(bob, work, "phone")  # a licence on another device of Bob's counts as the same
    response = _post(api(bob), _reviews_url(work), {"rating": 2, "body": "From my phone."})
    assert response.status_code == 409
    assert Review.objects.filter(author=bob).count() == 1


def test_a_member_who_never_bought_cannot_review(api, carol, work) -> None:
    response = _post(api(carol), _reviews_url(work), {"rating": 1, "body": "Never saw it."})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "no_licence"
    assert not Review.objects.exists()


def test_a_revoked_licence_does_not_allow_a_review(api, bob, work, bobs_licence) -> None:
    from exchange.licensing.services import licence_revoke

    licence_revoke(licence=bobs_licence, reason="refunded")
    response = _post(api(bob), _reviews_url(work), {"rating": 1, "body": "Refunded."})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "no_licence"
    assert not Review.objects.exists()


def test_one_revoked_and_one_live_licence_allow_a_review(api, bob, work, bobs_licence,
                                                           buy) -> None:
    from exchange.licensing.services import licence_revoke

    buy(bob, work, "phone")
    licence_revoke(licence=bobs_licence, reason="lost laptop")
    assert _post(api(bob), _reviews_url(work), {"rating": 3, "body": "Ok."}).status_code == 201


def test_the_rights_holder_cannot_review_their_own_work(api, rita, work) -> None:
    response = _post(api(rita), _reviews_url(work), {"rating": 5, "body": "Mine is great."})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "own_work"


def test_a_draft_work_cannot_be_reviewed_or_listed_by_others(api, bob, rita, make_work) -> None:
    draft = make_work(rita, title="Draft", ready=False)
    assert api(bob).get(_reviews_url(draft)).status_code == 404
    assert _post(api(bob), _reviews_url(draft), {"rating": 5, "body": "x"}).status_code == 404
    assert api(None).get(f"/api/v1/works/{uuid.uuid4()}/reviews/").status_code == 404


def test_anonymous_members_read_but_cannot_write(api, work, bobs_review) -> None:
    anonymous = api(None)
    assert anonymous.get(_reviews_url(work)).status_code == 200
    assert _post(anonymous, _reviews_url(work), {"rating": 5, "body": "x"}).status_code == 401


def test_a_create_needs_an_idempotency_key_and_replays_it(api, bob, work, bobs_licence) -> None:
    client = api(bob)
    missing = client.post(_reviews_url(work), {"rating": 4, "body": "x"}, format="json")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "idempotency_key_required"
    key = _key()
    first = _post(client, _reviews_url(work), {"rating": 4, "body": "Twice?"}, **key)
    again = _post(client, _reviews_url(work), {"rating": 4, "body": "Twice?"}, **key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = _post(client, _reviews_url(work), {"rating": 1, "body": "Other"}, **key)
    assert other.status_code == 422
    assert Review.objects.count() == 1


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"rating": 0, "body": "x"}, "rating", "invalid"),
    ({"rating": 6, "body": "x"}, "rating", "invalid"),
    ({"rating": True, "body": "x"}, "rating", "invalid"),
    ({"rating": 4.5, "body": "x"}, "rating", "invalid"),
    ({"rating": 5}, "body", "invalid"),
    ({"rating": 5, "body": ""}, "body", "invalid"),
    ({"rating": 5, "body": "   \n "}, "body", "empty"),
    ({"rating": 5, "body": 12}, "body", "invalid"),
    ({"rating": 5, "body": "x" * 5001}, "body", "invalid"),
    ({"rating": 5, "body": "bell\x07"}, "body", "invalid_characters"),
    ({"rating": 5, "body": "escape \x1b[31m red"}, "body", "invalid_characters"),
    ({"rating": 5, "body": "nul \x00"}, "body", "invalid"),
    ({"rating": 5, "body": "lone \udc80 surrogate"}, "body", "invalid"),
])
def test_bad_reviews_are_refused_and_nothing_is_stored(api, bob, work, bobs_licence, body,
                                                       field, code) -> None:
    # json.dumps escapes what the test client could not encode (a lone surrogate), as a
    # hostile client's JSON would carry it
    response = api(bob).generic("POST", _reviews_url(work), json.dumps(body),
                                content_type="application/json", **_key())
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], list(error["fields"])) == (code, [field])
    assert not Review.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="review.").exists()


def test_a_huge_body_is_refused_without_storing(api, bob, work, bobs_licence) -> None:
    response = _post(api(bob), _reviews_url(work), {"rating": 5, "body": "가" * 1_000_000})
    assert response.status_code in (400, 413)
    assert not Review.objects.exists()


def test_invalid_utf8_is_a_malformed_request(api, bob, work, bobs_licence) -> None:
    raw = b'{"rating": 5, "body": "caf\xe9"}'
    response = api(bob).generic("POST", _reviews_url(work), raw, content_type="application/json",
                                **_key())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert not Review.objects.exists()


def test_a_script_is_stored_as_typed_and_served_as_text(api, bob, carol, work,
                                                        bobs_licence) -> None:
    script = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    created = _post(api(bob), _reviews_url(work), {"rating": 2, "body": script})
    assert created.status_code == 201
    assert created["Content-Type"] == "application/json"
    listed = api(carol).get(_reviews_url(work)).json()["results"]
    assert listed[0]["body"] == script  # text in JSON; the portal escapes it (portal tests)


def test_korean_text_is_kept_in_nfc(api, bob, work, bobs_licence) -> None:
    decomposed = "\u1112\u1161\u11ab \uc88b\uc544\uc694"  # "한 좋아요" with 한 as jamo
    response = _post(api(bob), _reviews_url(work), {"rating": 5, "body": decomposed})
    assert response.json()["body"] == "\ud55c \uc88b\uc544\uc694"


# --- editing and deleting ------------------------------------------------------------


def test_the_author_edits_and_the_same_edit_twice_is_one_edit(api, bob, bobs_review) -> None:
    client, url = api(bob), f"/api/v1/reviews/{bobs_review.pk}/"
    first = client.patch(url, {"body": "Calmer on a second look.", "rating": 5}, format="json")
    assert first.status_code == 200
    assert (first.json()["rating"], first.json()["body"]) == (5, "Calmer on a second look.")
    edited_at = first.json()["edited_at"]
    assert edited_at is not None
    again = client.patch(url, {"body": "Calmer on a second look.", "rating": 5}, format="json")
    assert again.json()["edited_at"] == edited_at
    assert AuditEvent.objects.filter(action="review.edit").count() == 1


def test_an_edit_with_a_key_replays(api, bob, bobs_review) -> None:
    client, url, key = api(bob), f"/api/v1/reviews/{bobs_review.pk}/", _key()
    first = client.patch(url, {"rating": 1}, format="json", **key)
    again = client.patch(url, {"rating": 1}, format="json", **key)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


@pytest.mark.parametrize("who", ["carol", "rita", "admin_user"])
def test_nobody_else_edits_or_deletes_a_review(api, request, bobs_review, who) -> None:
    client, url = api(request.getfixturevalue(who)), f"/api/v1/reviews/{bobs_review.pk}/"
    assert client.patch(url, {"rating": 1, "body": "forged"}, format="json").status_code == 403
    assert client.delete(url).status_code == 403
    bobs_review.refresh_from_db()
    assert (bobs_review.rating, bobs_review.body, bobs_review.edited_at) == \
        (4, "Calm and clear.", None)


def test_a_bad_edit_changes_nothing(api, bob, bobs_review) -> None:
    response = api(bob).patch(f"/api/v1/reviews/{bobs_review.pk}/",
                              {"rating": 2, "body": "bad\x00"}, format="json")
    assert response.status_code == 400
    bobs_review.refresh_from_db()
    assert (bobs_review.rating, bobs_review.body) == (4, "Calm and clear.")


def test_the_author_deletes_the_review_and_its_reply(api, bob, rita, bobs_review) -> None:
    from exchange.reviews.services import reply_put

    reply_put(actor=rita, review_id=bobs_review.pk, body="Thank you!")
    assert api(bob).delete(f"/api/v1/reviews/{bobs_review.pk}/").status_code == 204
    assert not Review.objects.exists()
    assert not Reply.objects.exists()
    assert api(bob).get(f"/api/v1/reviews/{bobs_review.pk}/").status_code == 404


def test_a_missing_or_malformed_review_id_is_a_404(api, bob) -> None:
    for review_id in (uuid.uuid4(), "not-a-uuid"):
        response = api(bob).get(f"/api/v1/reviews/{review_id}/")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


# --- replies -------------------------------------------------------------------------


def test_the_owner_replies_once_edits_it_and_the_author_is_notified(
        api, bob, rita, bobs_review, django_capture_on_commit_callbacks) -> None:
    from exchange.community.models import Notification

    url = f"/api/v1/reviews/{bobs_review.pk}/reply/"
    with django_capture_on_commit_callbacks(execute=True):
        first = api(rita).put(url, {"body": "Thank you, Bob."}, format="json")
    assert first.status_code == 201
    assert (first.json()["author"], first.json()["body"]) == ("rita", "Thank you, Bob.")
    note = Notification.objects.get(recipient=bob)
    assert note.kind == "review_reply"
    edited = api(rita).put(url, {"body": "Thank you, Bob!"}, format="json")
    assert edited.status_code == 200
    assert edited.json()["edited_at"] is not None
    assert Reply.objects.get().body == "Thank you, Bob!"
    review = api(None).get(f"/api/v1/reviews/{bobs_review.pk}/").json()
    assert review["reply"]["body"] == "Thank you, Bob!"
    assert api(rita).delete(url).status_code == 204
    assert api(rita).delete(url).status_code == 404
    assert Notification.objects.filter(recipient=bob).count() == 1  # an edit is not news


@pytest.mark.parametrize("who", ["bob", "carol", "rob", "admin_user"])
def test_only_the_works_owner_replies(api, request, rita, bobs_review, who) -> None:
    from exchange.reviews.services import reply_put

    url = f"/api/v1/reviews/{bobs_review.pk}/reply/"
    client = api(request.getfixturevalue(who))
    assert client.put(url, {"body": "forged reply"}, format="json").status_code == 403
    reply_put(actor=rita, review_id=bobs_review.pk, body="The real one.")
    assert client.delete(url).status_code == 403
    assert Reply.objects.get().body == "The real one."


def test_rob_cannot_reply_to_a_review_of_his_own_work_through_ritas(
        api, rob, carol, make_work, buy, bobs_review) -> None:
    # Rob owns a work too; Bob's review is of Rita's: owning some work is not enough
    robs = make_work(rob, title="Rob's")
    buy(carol, robs)
    response = api(rob).put(f"/api/v1/reviews/{bobs_review.pk}/reply/", {"body": "x"},
                            format="json")
    assert response.status_code == 403


def test_a_script_in_a_reply_and_a_huge_reply_are_handled(api, rita, bobs_review) -> None:
    url = f"/api/v1/reviews/{bobs_review.pk}/reply/"
    assert api(rita).put(url, {"body": "x" * 2001}, format="json").status_code == 400
    assert not Reply.objects.exists()
    script = "<script>steal()</script>"
    assert api(rita).put(url, {"body": script}, format="json").json()["body"] == script


# --- reports -------------------------------------------------------------------------


def test_a_member_reports_once(api, carol, bobs_review) -> None:
    url = f"/api/v1/reviews/{bobs_review.pk}/reports/"
    assert _post(api(carol), url, {"reason": "Spoilers."}).status_code == 201
    again = _post(api(carol), url, {"reason": "Spoilers!"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_reported"
    assert list(Report.objects.values_list("reporter__username", "reason")) == \
        [("carol", "Spoilers.")]


def test_the_author_cannot_report_their_own_review(api, bob, bobs_review) -> None:
    response = _post(api(bob), f"/api/v1/reviews/{bobs_review.pk}/reports/", {"reason": "x"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "own_review"
    assert not Report.objects.exists()


def test_a_report_needs_a_short_reason(api, carol, bobs_review) -> None:
    url = f"/api/v1/reviews/{bobs_review.pk}/reports/"
    assert _post(api(carol), url, {"reason": "r" * 501}).status_code == 400
    assert _post(api(carol), url, {"reason": "bad\x08"}).status_code == 400
    assert _post(api(carol), url, {}).status_code == 400
    assert not Report.objects.exists()


# --- moderation ----------------------------------------------------------------------


def _hide(client: Any, review: Any, reason: str = "Insults the artist.") -> Any:
    return _post(client, f"/api/v1/reviews/{review.pk}/hide/", {"reason": reason})


@pytest.mark.parametrize("who", ["bob", "carol", "rita"])
def test_only_staff_hide_and_restore(api, request, bobs_review, who) -> None:
    client = api(request.getfixturevalue(who))
    assert _hide(client, bobs_review).status_code == 403
    assert _post(client, f"/api/v1/reviews/{bobs_review.pk}/restore/",
                 {"reason": "x"}).status_code == 403
    bobs_review.refresh_from_db()
    assert bobs_review.hidden_at is None


def test_a_hidden_review_leaves_public_view_and_the_average(
        api, bob, carol, rita, admin_user, work, bobs_review, buy) -> None:
    from exchange.reviews.services import review_create

    buy(carol, work)
    review_create(author=carol, work_id=work.pk, rating=1, body="Too dark.")
    summary = api(None).get(_reviews_url(work)).json()["summary"]
    assert summary == {"count": 2, "total": 5, "average": "2.5"}

    hidden = _hide(api(admin_user), bobs_review)
    assert hidden.status_code == 200
    assert (hidden.json()["hidden"], hidden.json()["hidden_reason"]) == \
        (True, "Insults the artist.")

    for viewer in (None, carol, rita):
        listed = api(viewer).get(_reviews_url(work)).json()
        assert [r["author"] for r in listed["results"]] == ["carol"]
        assert listed["summary"] == {"count": 1, "total": 1, "average": "1.0"}
        assert api(viewer).get(f"/api/v1/reviews/{bobs_review.pk}/").status_code == 404
    # its author still sees it, with the reason; so do the admins
    own = api(bob).get(f"/api/v1/reviews/{bobs_review.pk}/").json()
    assert (own["hidden"], own["hidden_reason"]) == (True, "Insults the artist.")
    assert {r["author"] for r in api(bob).get(_reviews_url(work)).json()["results"]} == \
        {"bob", "carol"}
    assert api(bob).get(_reviews_url(work)).json()["summary"]["count"] == 1
    assert len(api(admin_user).get(_reviews_url(work)).json()["results"]) == 2
    # nobody can reply to, report or delete it meanwhile
    assert api(rita).put(f"/api/v1/reviews/{bobs_review.pk}/reply/", {"body": "x"},
                         format="json").status_code == 404
    assert _post(api(carol), f"/api/v1/reviews/{bobs_review.pk}/reports/",
                 {"reason": "x"}).status_code == 404
    deleted = api(bob).delete(f"/api/v1/reviews/{bobs_review.pk}/")
    assert deleted.status_code == 409
    assert deleted.json()["error"]["code"] == "review_hidden"

    assert _hide(api(admin_user), bobs_review).status_code == 409
    restored = _post(api(admin_user), f"/api/v1/reviews/{bobs_review.pk}/restore/",
                     {"reason": "Reviewed again: fair criticism."})
    assert restored.status_code == 200
    assert restored.json()["hidden"] is False
    assert api(None).get(_reviews_url(work)).json()["summary"]["count"] == 2
    actions = list(AuditEvent.objects.filter(target_id=str(bobs_review.pk),
                                             action__in=["review.hide", "review.restore"])
                   .order_by("id").values_list("action", "actor__username", "data"))
    assert actions == [
        ("review.hide", "admin", {"reason": "Insults the artist."}),
        ("review.restore", "admin", {"reason": "Reviewed again: fair criticism.",
                                     "hidden_reason": "Insults the artist."}),
    ]


def test_moderation_needs_a_reason(api, admin_user, bobs_review) -> None:
    assert _hide(api(admin_user), bobs_review, reason="   ").status_code == 400
    assert _post(api(admin_user), f"/api/v1/reviews/{bobs_review.pk}/hide/", {}).status_code \
        == 400
    bobs_review.refresh_from_db()
    assert bobs_review.hidden_at is None


@pytest.mark.parametrize(("ratings", "average"), [
    ([5], "5.0"), ([4, 5], "4.5"), ([1, 2, 2], "1.7"), ([5, 5, 4], "4.7"),
    ([1, 1, 2], "1.3"), ([3, 4, 4, 4, 4, 4, 4, 4], "3.9"), ([1, 2], "1.5"),
])
def test_the_average_is_exact_and_rounds_halves_up(ratings, average) -> None:
    from exchange.reviews.selectors import RatingSummary

    summary = RatingSummary(count=len(ratings), total=sum(ratings))
    assert summary.average == average


def test_the_average_of_nothing_is_null(api, work) -> None:
    assert api(None).get(_reviews_url(work)).json()["summary"] == \
        {"count": 0, "total": 0, "average": None}


# --- floods --------------------------------------------------------------------------


def test_a_flood_of_edits_is_rate_limited(api, bob, bobs_review, settings) -> None:
    settings.REVIEWS_WRITE_RATE = "3/hour"
    client, url = api(bob), f"/api/v1/reviews/{bobs_review.pk}/"
    statuses = [client.patch(url, {"rating": 1 + n % 5}, format="json").status_code
                for n in range(5)]
    # the review itself (made by the service, before the limit was lowered) was one
    assert statuses == [200, 200, 429, 429, 429]
    limited = client.patch(url, {"rating": 5}, format="json")
    assert int(limited["Retry-After"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"
    bobs_review.refresh_from_db()
    assert bobs_review.rating == 2


def test_a_flood_of_reports_is_rate_limited(api, carol, rita, work, buy, settings) -> None:
    from exchange.accounts.models import Role, User
    from exchange.reviews.services import review_create

    settings.REVIEWS_REPORT_RATE = "2/hour"
    reviews = []
    for n in range(3):
        member = User.objects.create_user(username=f"m{n}", password="x", role=Role.BUYER)
        buy(member, work)
        reviews.append(review_create(author=member, work_id=work.pk, rating=3, body="ok"))
    statuses = [_post(api(carol), f"/api/v1/reviews/{review.pk}/reports/",
                      {"reason": "spam"}).status_code for review in reviews]
    assert statuses == [201, 201, 429]
    assert Report.objects.count() == 2


def test_a_flood_of_replies_is_rate_limited(api, rita, bobs_review, settings) -> None:
    settings.REVIEWS_REPLY_RATE = "2/hour"
    url = f"/api/v1/reviews/{bobs_review.pk}/reply/"
    statuses = [api(rita).put(url, {"body": f"v{n}"}, format="json").status_code
                for n in range(3)]
    assert statuses == [201, 200, 429]
    assert Reply.objects.get().body == "v1"


def test_error_bodies_have_the_one_shape(api, carol, work) -> None:
    response = _post(api(carol), _reviews_url(work), {"rating": 5, "body": "x"})
    assert set(json.loads(response.content)) == {"error"}
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_the_schema_documents_the_list_with_its_summary(client, api, work, bobs_review) -> None:
    import yaml

    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    operation = schema["paths"]["/api/v1/works/{work_id}/reviews/"]["get"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    documented = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(documented["properties"]) == {"count", "next", "previous", "results", "summary"}
    body = api(None).get(_reviews_url(work)).json()
    assert set(body) == {"count", "next", "previous", "results", "summary"}
    assert body["summary"] == {"count": 1, "total": 4, "average": "4.0"}
    for path, methods in {"/api/v1/works/{work_id}/reviews/": {"get", "post"},
                          "/api/v1/reviews/{review_id}/": {"get", "patch", "delete"},
                          "/api/v1/reviews/{review_id}/reply/": {"put", "delete"},
                          "/api/v1/reviews/{review_id}/reports/": {"post"},
                          "/api/v1/reviews/{review_id}/hide/": {"post"},
                          "/api/v1/reviews/{review_id}/restore/": {"post"}}.items():
        assert set(schema["paths"][path]) >= methods, path
        for method in methods - {"get"}:
            names = {p["name"] for p in schema["paths"][path][method].get("parameters", [])}
            assert "Idempotency-Key" in names, (method, path)


def test_a_refunded_buyers_review_leaves_the_list_and_the_average_and_cannot_be_edited(
        api: Any, bob: Any, carol: Any, work: Any, bobs_licence: Any, bobs_review: Any
) -> None:
    """A review written while the money sat in escrow must not outlive the refund: the
    same money could otherwise review a work from one account after another."""
    from exchange.purchases.models import Purchase
    from exchange.purchases.services import purchase_refund

    assert api(carol).get(_reviews_url(work)).json()["summary"]["count"] == 1
    purchase = Purchase.objects.get(licence=bobs_licence)
    purchase_refund(purchase_id=purchase.pk, reason="no receipt in time")

    listed = api(carol).get(_reviews_url(work)).json()
    assert (listed["count"], listed["summary"]["count"]) == (0, 0)
    assert api(carol).get(f"/api/v1/reviews/{bobs_review.pk}/").status_code == 404
    # Bob still sees his own, and may not edit it any more
    assert api(bob).get(f"/api/v1/reviews/{bobs_review.pk}/").status_code == 200
    edited = api(bob).patch(f"/api/v1/reviews/{bobs_review.pk}/", {"rating": 1},
                            format="json", **_key())
    assert edited.status_code == 403
    assert edited.json()["error"]["code"] == "no_licence"


def test_deleting_a_reported_review_keeps_its_text_and_reports_in_the_audit_log(
        api: Any, bob: Any, carol: Any, bobs_review: Any) -> None:
    from exchange.audit.models import AuditEvent

    reported = _post(api(carol), f"/api/v1/reviews/{bobs_review.pk}/reports/",
                     {"reason": "spam"})
    assert reported.status_code == 201, reported.json()
    assert api(bob).delete(f"/api/v1/reviews/{bobs_review.pk}/", **_key()).status_code == 204
    event = AuditEvent.objects.get(action="review.delete")
    assert event.data["body"] == "Calm and clear."
    assert [(r["reporter"], r["reason"]) for r in event.data["reports"]] == [(carol.pk, "spam")]
