from __future__ import annotations

from rest_framework import serializers

from exchange.core.fields import StrictCharField, StrictIntegerField
from exchange.reviews.models import (
    BODY_MAX_CHARS,
    MODERATION_REASON_MAX_CHARS,
    REPLY_MAX_CHARS,
    REPORT_MAX_CHARS,
)

_TEXT_HELP = ("Plain text (shown escaped, never as HTML); no control characters but "
              "newline and tab; at most {} characters.")


class ReviewIn(serializers.Serializer):
    rating = StrictIntegerField(min_value=1, max_value=5)
    body = StrictCharField(max_length=BODY_MAX_CHARS, trim_whitespace=False,
                           help_text=_TEXT_HELP.format(BODY_MAX_CHARS))


class ReviewEditIn(serializers.Serializer):
    rating = StrictIntegerField(min_value=1, max_value=5, required=False)
    body = StrictCharField(max_length=BODY_MAX_CHARS, trim_whitespace=False, required=False,
                           help_text=_TEXT_HELP.format(BODY_MAX_CHARS))


class ReplyIn(serializers.Serializer):
    body = StrictCharField(max_length=REPLY_MAX_CHARS, trim_whitespace=False,
                           help_text=_TEXT_HELP.format(REPLY_MAX_CHARS))


class ReportIn(serializers.Serializer):
    reason = StrictCharField(max_length=REPORT_MAX_CHARS, trim_whitespace=False,
                             help_text=_TEXT_HELP.format(REPORT_MAX_CHARS))


class ModerationIn(serializers.Serializer):
    reason = StrictCharField(max_length=MODERATION_REASON_MAX_CHARS, trim_whitespace=False,
                             help_text="Why (the author sees it; kept in the audit log).")


class ReplyOut(serializers.Serializer):
    author = serializers.CharField(source="author.username")
    body = serializers.CharField()
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)


class ReviewOut(serializers.Serializer):
    id = serializers.UUIDField()
    work = serializers.UUIDField(source="work_id")
    author = serializers.CharField(source="author.username")
    rating = serializers.IntegerField(min_value=1, max_value=5)
    body = serializers.CharField(help_text="Plain text: escape it when you show it.")
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)
    hidden = serializers.BooleanField(help_text="Hidden by a moderator: only its author and "
                                                "the admins see it.")
    hidden_reason = serializers.CharField(help_text="Why it was hidden; empty unless hidden.")
    reply = ReplyOut(allow_null=True, read_only=True,
                     help_text="The rights holder's reply, if any.")


class RatingSummaryOut(serializers.Serializer):
    count = serializers.IntegerField(help_text="Public reviews (hidden ones do not count).")
    total = serializers.IntegerField(help_text="The sum of their ratings: the average is "
                                               "exactly total / count.")
    average = serializers.CharField(allow_null=True,
                                    help_text="total / count to one decimal (halves up), "
                                              "as text; null with no reviews.")
