"""Reviews on the portal: the work page's list, form and rating; the author's edit page;
the rights holder's reply; reports; and the admin's moderation with a reason. Each
write is tried by someone who should not make it, and with bad text."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

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
    from exchange.purchases.services import purchase_create

    def make(user: Any, work: Any) -> Any:
        fund(user, 10_000)
        _keys, device = device_of(user)
        return purchase_create(buyer=user, work_id=work.pk, device_id=device.device_id).licence

    return make


@pytest.fixture
def bobs_review(bob: Any, work: Any, buy: Any) -> Any:
    from exchange.reviews.services import review_create

    buy(bob, work)
    return review_create(author=bob, work_id=work.pk, rating=4, body="Calm and clear.")


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page(client: Client, work: Any) -> str:
    response = client.get(f"/works/{work.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def _once(page: str, action: str) -> str:
    """The form key of the form posting to ``action`` on ``page``."""
    form = page[page.index(f'action="{action}"'):]
    match = re.search(r'name="once" value="([^"]+)"', form)
    assert match, f"no form key in the form for {action}"
    return match.group(1)


def test_a_licence_holder_sees_the_form_and_publishes_once(bob, work, buy) -> None:
    buy(bob, work)
    client = signed_in(bob)
    page = _page(client, work)
    assert "Review this work" in page
    action = f"/works/{work.pk}/reviews/"
    data = {"once": _once(page, action), "rating": "5", "body": "Lovely light."}
    first = client.post(action, data)
    assert first.status_code == 302
    assert first["Location"] == f"/works/{work.pk}/#reviews"
    client.post(action, data)  # a double click
    assert list(Review.objects.values_list("author__username", "rating", "body")) == \
        [("bob", 5, "Lovely light.")]
    page = _page(client, work)
    assert "Review this work" not in page
    assert "Edit or delete your review" in page
    assert '<span class="average">5.0</span>' in page


def test_the_form_is_offered_only_to_licence_holders(carol, rita, work, bobs_review) -> None:
    assert "Review this work" not in _page(Client(), work)
    assert "Members who hold a licence" in _page(signed_in(carol), work)
    assert "Review this work" not in _page(signed_in(rita), work)


def test_posting_without_a_licence_stores_nothing(carol, work) -> None:
    response = signed_in(carol).post(f"/works/{work.pk}/reviews/", {
        "once": "k1", "rating": "5", "body": "Never bought it."}, follow=True)
    assert "Only members who hold a licence for this work can review it." in \
        response.content.decode()
    assert not Review.objects.exists()


def test_a_script_in_a_review_is_shown_escaped(carol, work, bobs_review) -> None:
    from exchange.reviews.services import review_edit

    review_edit(actor=bobs_review.author, review_id=bobs_review.pk,
                body='<script>alert("x")</script><b>bold</b>')
    page = _page(signed_in(carol), work)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in page


def test_control_characters_are_refused_with_a_message(bob, work, buy) -> None:
    buy(bob, work)
    response = signed_in(bob).post(f"/works/{work.pk}/reviews/", {
        "once": "k2", "rating": "3", "body": "bell\x07"}, follow=True)
    assert "control character" in response.content.decode()
    assert not Review.objects.exists()


def test_the_author_edits_on_the_edit_page(bob, bobs_review) -> None:
    client = signed_in(bob)
    url = f"/reviews/{bobs_review.pk}/edit/"
    page = client.get(url)
    assert page.status_code == 200
    assert "Calm and clear." in page.content.decode()
    saved = client.post(url, {"once": "k", "rating": "2", "body": "Darker than I hoped."})
    assert saved.status_code == 302
    bobs_review.refresh_from_db()
    assert (bobs_review.rating, bobs_review.body) == (2, "Darker than I hoped.")
    assert bobs_review.edited_at is not None
    too_long = client.post(url, {"once": "k", "rating": "2", "body": "x" * 5001})
    assert too_long.status_code == 400
    bobs_review.refresh_from_db()
    assert bobs_review.body == "Darker than I hoped."


@pytest.mark.parametrize("who", ["carol", "rita", "admin_user"])
def test_another_members_edit_page_is_forbidden(request, bobs_review, who) -> None:
    client = signed_in(request.getfixturevalue(who))
    url = f"/reviews/{bobs_review.pk}/edit/"
    assert client.get(url).status_code == 403
    assert client.post(url, {"once": "k", "rating": "1", "body": "forged"}).status_code == 403
    assert client.post(f"/reviews/{bobs_review.pk}/delete/", {"once": "k"}).status_code == 403
    bobs_review.refresh_from_db()
    assert (bobs_review.rating, bobs_review.body) == (4, "Calm and clear.")


def test_the_author_deletes(bob, work, bobs_review) -> None:
    response = signed_in(bob).post(f"/reviews/{bobs_review.pk}/delete/", {"once": "k"})
    assert response.status_code == 302
    assert not Review.objects.exists()


def test_the_owner_replies_and_others_cannot(bob, carol, rob, rita, work, bobs_review) -> None:
    client = signed_in(rita)
    page = _page(client, work)
    action = f"/reviews/{bobs_review.pk}/reply/"
    response = client.post(action, {"once": _once(page, action), "body": "Thank you!"})
    assert response.status_code == 302
    assert Reply.objects.get().body == "Thank you!"
    assert "Reply from rita" in _page(signed_in(carol), work)
    for other in (bob, carol, rob):
        assert signed_in(other).post(action, {"once": "x", "body": "forged"}).status_code == 403
        assert signed_in(other).post(f"/reviews/{bobs_review.pk}/reply/delete/",
                                     {"once": "y"}).status_code == 403
    assert Reply.objects.get().body == "Thank you!"


def test_a_member_reports_once_and_the_author_cannot(bob, carol, work, bobs_review) -> None:
    client = signed_in(carol)
    page = _page(client, work)
    action = f"/reviews/{bobs_review.pk}/report/"
    assert client.post(action, {"once": _once(page, action), "reason": "Spam"}).status_code \
        == 302
    again = client.post(action, {"once": "fresh", "reason": "Spam!"}, follow=True)
    assert "You have already reported this review." in again.content.decode()
    own = signed_in(bob).post(action, {"once": "b", "reason": "mine"}, follow=True)
    assert "You cannot report your own review." in own.content.decode()
    assert list(Report.objects.values_list("reporter__username", flat=True)) == ["carol"]


def test_a_hidden_review_shows_its_reason_to_its_author_only(bob, carol, admin_user, work,
                                                             bobs_review) -> None:
    from exchange.reviews.services import review_hide

    review_hide(actor=admin_user, review_id=bobs_review.pk, reason="Off topic.")
    assert "Calm and clear." not in _page(signed_in(carol), work)
    assert "Calm and clear." not in _page(Client(), work)
    own = _page(signed_in(bob), work)
    assert "Calm and clear." in own
    assert "Hidden by the moderators: Off topic." in own
    assert signed_in(carol).post(f"/reviews/{bobs_review.pk}/report/",
                                 {"once": "z", "reason": "x"}).status_code == 404


def test_the_work_page_with_its_reviews_renders_in_korean(bob, work, bobs_review) -> None:
    client = signed_in(bob)
    page = client.get(f"/works/{work.pk}/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert 'lang="ko"' in page
    assert 'id="reviews"' in page
    assert "Calm and clear." in page


def test_the_admin_hides_with_a_reason_through_the_action(admin_user, bobs_review) -> None:
    client = signed_in(admin_user)
    url = "/admin/reviews/review/"
    assert client.get(url).status_code == 200
    asked = client.post(url, {"action": "hide", "_selected_action": [str(bobs_review.pk)]})
    assert asked.status_code == 200
    assert "Reason" in asked.content.decode()
    bobs_review.refresh_from_db()
    assert bobs_review.hidden_at is None  # not before a reason is given
    done = client.post(url, {"action": "hide", "_selected_action": [str(bobs_review.pk)],
                             "apply": "1", "reason": "Personal attack."})
    assert done.status_code == 302
    bobs_review.refresh_from_db()
    assert (bobs_review.hidden, bobs_review.hidden_reason) == (True, "Personal attack.")
    client.post(url, {"action": "restore", "_selected_action": [str(bobs_review.pk)],
                      "apply": "1", "reason": "Appeal upheld."})
    bobs_review.refresh_from_db()
    assert bobs_review.hidden_at is None
    assert list(AuditEvent.objects.filter(action__in=["review.hide", "review.restore"])
                .order_by("id").values_list("action", "data__reason")) == \
        [("review.hide", "Personal attack."), ("review.restore", "Appeal upheld.")]


def test_the_admin_lists_reports(admin_user, carol, bobs_review) -> None:
    from exchange.reviews.services import review_report

    review_report(reporter=carol, review_id=bobs_review.pk, reason="Spam link")
    page = signed_in(admin_user).get("/admin/reviews/report/").content.decode()
    assert "Spam link" in page
