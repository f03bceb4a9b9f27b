"""The portal's review forms. Each write form carries a fresh key (``once``), so a double
click or a resubmitted page writes once; the text rules are the services' own."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from exchange.reviews.models import (
    BODY_MAX_CHARS,
    REPLY_MAX_CHARS,
    REPORT_MAX_CHARS,
)

RATING_CHOICES = [(n, f"{'★' * n}{'☆' * (5 - n)} {n}") for n in range(5, 0, -1)]


class ReviewForm(forms.Form):
    once = forms.CharField(widget=forms.HiddenInput, max_length=64)
    rating = forms.TypedChoiceField(label=_("Rating"), choices=RATING_CHOICES, coerce=int)
    body = forms.CharField(label=_("Your review"), max_length=BODY_MAX_CHARS, strip=False,
                           widget=forms.Textarea(attrs={"rows": 5}),
                           help_text=_("Plain text: shown exactly as you type it."))


class ReplyForm(forms.Form):
    once = forms.CharField(widget=forms.HiddenInput, max_length=64)
    body = forms.CharField(label=_("Your public reply"), max_length=REPLY_MAX_CHARS,
                           strip=False, widget=forms.Textarea(attrs={"rows": 3}))


class ReportForm(forms.Form):
    once = forms.CharField(widget=forms.HiddenInput, max_length=64)
    reason = forms.CharField(label=_("What is wrong with this review?"),
                             max_length=REPORT_MAX_CHARS, strip=False)


class OnceForm(forms.Form):
    once = forms.CharField(widget=forms.HiddenInput, max_length=64)
