"""Every change to reviews, replies, reports and their moderation.

Each is one function that checks who asks, checks the text with the shared member-text
rules (``plain_text``: stored as typed, shown escaped), counts against the member's rate
limit, and writes in one transaction with its audit row, so a refusal stores nothing.
Notifications go out once the write has committed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.catalogue.models import WorkStatus
from exchange.catalogue.selectors import work_get_visible
from exchange.community.notifications import KIND_REVIEW, KIND_REVIEW_REPLY, notify
from exchange.core.errors import ServiceError
from exchange.core.member_text import plain_text
from exchange.core.rate_limits import Rate, check
from exchange.reviews.models import (
    BODY_MAX_CHARS,
    MODERATION_REASON_MAX_CHARS,
    REPLY_MAX_CHARS,
    REPORT_MAX_CHARS,
    Reply,
    Report,
    Review,
)
from exchange.reviews.selectors import (
    holds_licence,
    review_get_for_author,
    review_get_for_work_owner,
    review_get_visible,
)


class NotAllowedError(ServiceError):
    status_code = 403
    code = "permission_denied"


class ConflictError(ServiceError):
    status_code = 409
    code = "conflict"


def _rating(value: object) -> int:
    # bool is an int in Python; a rating of ``true`` is a client bug, not a 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ServiceError(_("A rating is a whole number from 1 to 5."), code="invalid",
                           field="rating")
    return value


def _review_path(review: Review) -> str:
    return f"/works/{review.work_id}/#review-{review.pk}"


def _notify_later(*, recipient: User, kind: str, title: str, body: str, url: str) -> None:
    """After commit, in the platform's language (the recipient's is not known)."""

    def send() -> None:
        notify(recipient=recipient, kind=kind, title=title, body=body, url=url)

    transaction.on_commit(send)


def review_create(*, author: User, work_id: object, rating: object, body: object) -> Review:
    """A licence holder's review of a work: one per member and work."""
    work = work_get_visible(user=author, work_id=work_id)
    rating, text = _rating(rating), plain_text(body, field="body", max_chars=BODY_MAX_CHARS)
    if work.owner_id == author.pk:
        raise NotAllowedError(_("You cannot review your own work."), code="own_work")
    if not holds_licence(user=author, work=work):
        raise NotAllowedError(_("Only members who hold a licence for this work can review it."),
                              code="no_licence")
    if Review.objects.filter(work=work, author=author).exists():
        raise ConflictError(_("You have already reviewed this work: edit your review instead."),
                            code="already_reviewed")
    check("reviews.write", author.pk, Rate.parse(settings.REVIEWS_WRITE_RATE))
    try:
        with transaction.atomic():
            review = Review.objects.create(work=work, author=author, rating=rating, body=text)
            audit_record(actor=author, action="review.create", target=review,
                         data={"work": str(work.pk), "rating": rating})
    except IntegrityError:  # the same member's concurrent first review won the race
        raise ConflictError(_("You have already reviewed this work: edit your review instead."),
                            code="already_reviewed") from None
    if work.status == WorkStatus.READY:
        with translation.override(settings.LANGUAGE_CODE):
            title = _("%(name)s reviewed “%(work)s” (%(rating)d/5)") % {
                "name": author.username, "work": work.title, "rating": rating}
        _notify_later(recipient=work.owner, kind=KIND_REVIEW, title=title, body=text[:500],
                      url=_review_path(review))
    return review


def review_edit(*, actor: User, review_id: object, rating: object = None,
                body: object = None) -> Review:
    """The author's edit. The same edit twice is one edit: ``edited_at`` moves only when
    the rating or text changes."""
    review = review_get_for_author(user=actor, review_id=review_id)
    if not holds_licence(user=actor, work=review.work):  # refunded since, say
        raise NotAllowedError(_("Only members who hold a licence for this work can review it."),
                              code="no_licence")
    new_rating = review.rating if rating is None else _rating(rating)
    new_body = review.body if body is None else plain_text(body, field="body",
                                                           max_chars=BODY_MAX_CHARS)
    if (new_rating, new_body) == (review.rating, review.body):
        return review
    check("reviews.write", actor.pk, Rate.parse(settings.REVIEWS_WRITE_RATE))
    with transaction.atomic():
        locked = Review.objects.select_for_update().get(pk=review.pk)
        locked.rating, locked.body, locked.edited_at = new_rating, new_body, timezone.now()
        locked.save(update_fields=["rating", "body", "edited_at"])
        audit_record(actor=actor, action="review.edit", target=locked,
                     data={"rating": new_rating, "previous_rating": review.rating})
    review.rating, review.body, review.edited_at = new_rating, new_body, locked.edited_at
    return review


def review_delete(*, actor: User, review_id: object) -> None:
    """The author takes their review (and the reply to it) down. A hidden review stays:
    deleting it would let its author post a fresh one past the moderation."""
    review = review_get_for_author(user=actor, review_id=review_id)
    if review.hidden:
        raise ConflictError(_("A review hidden by the moderators cannot be deleted."),
                            code="review_hidden")
    with transaction.atomic():
        # The reports go with the review: the audit row keeps what they were about.
        reports = list(review.reports.values("reporter_id", "reason", "created_at"))
        audit_record(actor=actor, action="review.delete", target=review,
                     data={"work": str(review.work_id), "rating": review.rating,
                           "body": review.body,
                           "reports": [{"reporter": r["reporter_id"], "reason": r["reason"],
                                        "at": r["created_at"].isoformat()} for r in reports]})
        Review.objects.filter(pk=review.pk, hidden_at__isnull=True).delete()


def reply_put(*, actor: User, review_id: object, body: object) -> tuple[Reply, bool]:
    """The work's rights holder's reply, made or replaced: (reply, created)."""
    review = review_get_for_work_owner(user=actor, review_id=review_id)
    text = plain_text(body, field="body", max_chars=REPLY_MAX_CHARS)
    existing = Reply.objects.filter(review=review).first()
    if existing is not None and existing.body == text:
        return existing, False
    check("reviews.reply", actor.pk, Rate.parse(settings.REVIEWS_REPLY_RATE))
    with transaction.atomic():
        reply, created = Reply.objects.select_for_update().get_or_create(
            review=review, defaults={"author": actor, "body": text})
        if not created:
            reply.body, reply.edited_at = text, timezone.now()
            reply.save(update_fields=["body", "edited_at"])
        audit_record(actor=actor, action="review.reply" if created else "review.reply_edit",
                     target=review)
    if created:
        with translation.override(settings.LANGUAGE_CODE):
            title = _("%(name)s replied to your review of “%(work)s”") % {
                "name": actor.username, "work": review.work.title}
        _notify_later(recipient=review.author, kind=KIND_REVIEW_REPLY, title=title,
                      body=text[:500], url=_review_path(review))
    return reply, created


def reply_delete(*, actor: User, review_id: object) -> None:
    review = review_get_for_work_owner(user=actor, review_id=review_id)
    with transaction.atomic():
        deleted, _rows = Reply.objects.filter(review=review).delete()
        if not deleted:
            raise ServiceError(_("This review has no reply."), code="not_found", status_code=404)
        audit_record(actor=actor, action="review.reply_delete", target=review)


def review_report(*, reporter: User, review_id: object, reason: object) -> Report:
    """A member tells the admins about a review: once per member and review."""
    review = review_get_visible(user=reporter, review_id=review_id)
    text = plain_text(reason, field="reason", max_chars=REPORT_MAX_CHARS)
    if review.author_id == reporter.pk:
        raise NotAllowedError(_("You cannot report your own review."), code="own_review")
    if Report.objects.filter(review=review, reporter=reporter).exists():
        raise ConflictError(_("You have already reported this review."),
                            code="already_reported")
    check("reviews.report", reporter.pk, Rate.parse(settings.REVIEWS_REPORT_RATE))
    try:
        with transaction.atomic():
            report = Report.objects.create(review=review, reporter=reporter, reason=text)
            audit_record(actor=reporter, action="review.report", target=review,
                         data={"report": report.pk})
    except IntegrityError:
        raise ConflictError(_("You have already reported this review."),
                            code="already_reported") from None
    return report


def _moderator(actor: User) -> None:
    if not actor.is_platform_admin:
        raise NotAllowedError(_("Only the platform's admins moderate reviews."))


def review_hide(*, actor: User, review_id: object, reason: object) -> Review:
    """An admin takes a review out of public view, saying why (the author sees it)."""
    _moderator(actor)
    review = review_get_visible(user=actor, review_id=review_id)
    text = plain_text(reason, field="reason", max_chars=MODERATION_REASON_MAX_CHARS)
    with transaction.atomic():
        hidden_at = timezone.now()
        changed = Review.objects.filter(pk=review.pk, hidden_at__isnull=True).update(
            hidden_at=hidden_at, hidden_reason=text)
        if not changed:
            raise ConflictError(_("This review is already hidden."), code="already_hidden")
        audit_record(actor=actor, action="review.hide", target=review, data={"reason": text})
    review.hidden_at, review.hidden_reason = hidden_at, text
    return review


def review_restore(*, actor: User, review_id: object, reason: object) -> Review:
    """An admin puts a hidden review back, saying why (kept in the audit log)."""
    _moderator(actor)
    review = review_get_visible(user=actor, review_id=review_id)
    text = plain_text(reason, field="reason", max_chars=MODERATION_REASON_MAX_CHARS)
    with transaction.atomic():
        changed = Review.objects.filter(pk=review.pk, hidden_at__isnull=False).update(
            hidden_at=None, hidden_reason="")
        if not changed:
            raise ConflictError(_("This review is not hidden."), code="not_hidden")
        audit_record(actor=actor, action="review.restore", target=review,
                     data={"reason": text, "hidden_reason": review.hidden_reason})
    review.hidden_at, review.hidden_reason = None, ""
    return review
