"""Reviews of works by members who hold a licence for them, the rights holder's reply,
members' reports, and the moderation state an admin sets."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

#: the limits of what members write here, in characters (after NFC and stripping)
BODY_MAX_CHARS = 5000
REPLY_MAX_CHARS = 2000
REPORT_MAX_CHARS = 500
MODERATION_REASON_MAX_CHARS = 500


class Review(models.Model):
    """One member's rating and review of one work: a member's licences for a work on
    several devices are one licence for reviewing, so the key is (work, author)."""

    # A UUID: review ids appear in public URLs and must not count the reviews.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    work = models.ForeignKey("catalogue.Work", on_delete=models.PROTECT, related_name="reviews")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="reviews")
    rating = models.PositiveSmallIntegerField(_("rating"))
    body = models.TextField(_("review"), max_length=BODY_MAX_CHARS)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    # Moderation: a hidden review leaves public lists and the average; its author still
    # sees it, with the reason.
    hidden_at = models.DateTimeField(null=True, blank=True, db_index=True)
    hidden_reason = models.CharField(max_length=MODERATION_REASON_MAX_CHARS, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["work", "author"], name="review_one_per_member"),
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5),
                                   name="review_rating_range"),
        ]

    def __str__(self) -> str:
        return f"review {self.pk} ({self.rating}/5)"

    @property
    def hidden(self) -> bool:
        return self.hidden_at is not None


class Reply(models.Model):
    """The rights holder's public answer to a review: one per review, editable."""

    review = models.OneToOneField(Review, on_delete=models.CASCADE, primary_key=True,
                                  related_name="reply")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="review_replies")
    body = models.TextField(_("reply"), max_length=REPLY_MAX_CHARS)
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "replies"

    def __str__(self) -> str:
        return f"reply to {self.review_id}"


class Report(models.Model):
    """A member's report of a review, for the admins: once per member per review."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="review_reports")
    reason = models.CharField(_("reason"), max_length=REPORT_MAX_CHARS)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "reporter"], name="report_once_per_member"),
        ]

    def __str__(self) -> str:
        return f"report of {self.review_id} by {self.reporter_id}"
