"""Who sees which review, and a work's rating summary.

One access rule for every view: a review is visible where its work is (the catalogue's
rule), unless an admin hid it; its author and the admins still see a hidden one. What
one may not see is a 404, the same answer as for a review that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound, PermissionDenied

from exchange.accounts.models import User
from exchange.catalogue.models import Work
from exchange.catalogue.selectors import works_visible_to
from exchange.licensing.models import Licence
from exchange.reviews.models import Review


def _staff(user: User | AnonymousUser) -> bool:
    return bool(getattr(user, "is_platform_admin", False))


def _author_holds_licence() -> Exists:
    """The review's author still holds a licence for the work that is not revoked. A
    refund revokes every licence of its purchase: a review written while the money sat
    in escrow must not outlive the refund (the same money could then review-bomb a work
    from one account after another)."""
    return Exists(Licence.objects.filter(buyer_id=OuterRef("author_id"),
                                         work_id=OuterRef("work_id"), revoked_at__isnull=True))


def public_reviews() -> QuerySet[Review]:
    """Reviews anyone may read and that count in the average: not hidden, and by a member
    who still holds a licence for the work."""
    return Review.objects.filter(_author_holds_licence(), hidden_at__isnull=True)


def reviews_of_work_visible_to(*, user: User | AnonymousUser, work: Work) -> QuerySet[Review]:
    """The work's reviews this member may read: the public ones, their own (hidden, or
    left by a refund, or not), and every one for an admin."""
    reviews = Review.objects.select_related("author", "reply", "reply__author").filter(work=work)
    if _staff(user):
        return reviews
    public = Q(_author_holds_licence(), hidden_at__isnull=True)
    if user.is_authenticated:
        return reviews.filter(public | Q(author_id=user.pk))
    return reviews.filter(public)


def review_get_visible(*, user: User | AnonymousUser, review_id: object) -> Review:
    try:
        key = uuid.UUID(str(review_id))
    except ValueError:
        raise NotFound(_("No such review.")) from None
    review = (Review.objects.select_related("work", "work__owner", "author", "reply",
                                            "reply__author")
              .filter(pk=key, work__in=works_visible_to(user)).first())
    if review is None:
        raise NotFound(_("No such review."))
    if review.author_id != user.pk and not _staff(user) and (
            review.hidden or not holds_licence(user=review.author, work=review.work)):
        raise NotFound(_("No such review."))
    return review


def review_get_for_author(*, user: User | AnonymousUser, review_id: object) -> Review:
    """The review, if ``user`` wrote it; another's visible review is a 403."""
    review = review_get_visible(user=user, review_id=review_id)
    if review.author_id != user.pk:
        raise PermissionDenied(_("You can change only your own reviews."))
    return review


def review_get_for_work_owner(*, user: User | AnonymousUser, review_id: object) -> Review:
    """The review, if ``user`` owns the reviewed work (who alone may reply)."""
    review = review_get_visible(user=user, review_id=review_id)
    if review.work.owner_id != user.pk:
        raise PermissionDenied(_("Only the work's rights holder can reply to its reviews."))
    return review


def holds_licence(*, user: User | AnonymousUser, work: Work) -> bool:
    """At least one licence for the work that was not revoked (on any of the member's
    devices: re-issued licences count with the first)."""
    return bool(user.is_authenticated and Licence.objects.filter(
        buyer_id=user.pk, work=work, revoked_at__isnull=True).exists())


@dataclass(frozen=True)
class RatingSummary:
    """The public reviews' ratings: count and sum, so the average is the exact fraction
    ``total / count``; ``average`` renders it to one decimal, halves rounded up."""

    count: int
    total: int

    @property
    def average(self) -> str | None:
        if not self.count:
            return None
        tenths = (self.total * 20 + self.count) // (2 * self.count)  # round half up
        return f"{tenths // 10}.{tenths % 10}"

    @property
    def stars(self) -> int:
        """The average to a whole star (halves up), for the page's picture of it."""
        return (self.total * 2 + self.count) // (2 * self.count) if self.count else 0


def rating_summary(work: Work) -> RatingSummary:
    """Hidden reviews count for nobody, admins included: the average is the public one."""
    figures = public_reviews().filter(work=work).aggregate(count=Count("pk"),
                                                            total=Sum("rating"))
    return RatingSummary(count=figures["count"] or 0, total=figures["total"] or 0)
