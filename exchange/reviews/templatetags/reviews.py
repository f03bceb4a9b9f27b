"""``{% work_reviews work %}``: a work's reviews, rating and forms, for its page. A tag,
so the catalogue's view needs to know nothing about reviews."""

from __future__ import annotations

from typing import Any

from django import template

from exchange.catalogue.models import Work
from exchange.core.idempotency import form_key
from exchange.reviews.forms import OnceForm, ReplyForm, ReportForm, ReviewForm
from exchange.reviews.selectors import holds_licence, rating_summary, reviews_of_work_visible_to

register = template.Library()

#: reviews shown on a work's page; the API pages through all of them
SHOWN = 50


@register.inclusion_tag("reviews/_work_reviews.html", takes_context=True)
def work_reviews(context: dict[str, Any], work: Work) -> dict[str, Any]:
    request = context["request"]
    user = request.user
    reviews = list(reviews_of_work_visible_to(user=user, work=work)[:SHOWN])
    mine = next((r for r in reviews if r.author_id == user.pk), None) \
        if user.is_authenticated else None
    can_review = (user.is_authenticated and mine is None and work.owner_id != user.pk
                  and holds_licence(user=user, work=work))
    is_owner = user.is_authenticated and work.owner_id == user.pk
    return {
        "request": request, "user": user, "work": work, "reviews": reviews, "mine": mine,
        "summary": rating_summary(work), "can_review": can_review, "is_owner": is_owner,
        "review_form": ReviewForm(initial={"once": form_key()}, auto_id="id_review_%s")
        if can_review else None,
        # one form per review, each with its own key and its own element ids
        "reply_forms": {r.pk: ReplyForm(initial={
            "once": form_key(), "body": getattr(getattr(r, "reply", None), "body", "")},
            auto_id=f"id_reply_{r.pk}_%s") for r in reviews} if is_owner else {},
        # a key per form, so that reporting two reviews from one page reports both
        "report_forms": {r.pk: ReportForm(initial={"once": form_key()},
                                          auto_id=f"id_report_{r.pk}_%s") for r in reviews},
        "delete_reply_forms": {r.pk: OnceForm(initial={"once": form_key()},
                                              auto_id=f"id_unreply_{r.pk}_%s")
                               for r in reviews} if is_owner else {},
        "csrf_token": context.get("csrf_token"),
    }


@register.filter
def stars(rating: int) -> str:
    return "★" * rating + "☆" * (5 - rating)


@register.filter
def get_item(mapping: dict[Any, Any], key: Any) -> Any:
    return mapping.get(key)
