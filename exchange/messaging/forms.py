"""The portal's message forms. They only collect strings: the services check the text
(sizes, characters, sanitising), exactly as for the API."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class MessageForm(forms.Form):
    once = forms.CharField(widget=forms.HiddenInput, max_length=64)
    to = forms.CharField(label=_("To"), max_length=150,
                         help_text=_("The member's username."))
    subject = forms.CharField(label=_("Subject"), required=False, strip=False,
                              max_length=200)
    body = forms.CharField(label=_("Message"), strip=False, widget=forms.Textarea(
        attrs={"rows": 6}), help_text=_("Plain text, or a little HTML: bold, italics, links, "
                                       "lists. Anything else is removed."))


class ReplyForm(forms.Form):
    """A reply in a thread: the recipient is the thread's other member."""

    once = forms.CharField(widget=forms.HiddenInput, max_length=64)
    body = forms.CharField(label=_("Reply"), strip=False, widget=forms.Textarea(
        attrs={"rows": 4}))


class BlockForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)


class ReportForm(forms.Form):
    reason = forms.CharField(label=_("Why are you reporting this message?"), required=False,
                             strip=False, max_length=1000)
