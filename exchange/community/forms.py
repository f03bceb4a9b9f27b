"""Portal forms of community. They only shape the input: the rules (text, links, limits)
are the services', the same as the API's."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from exchange.catalogue.models import MediaType
from exchange.community import notifications
from exchange.community.models import Channel
from exchange.community.services import BIO_MAX_CHARS, DISPLAY_NAME_MAX_CHARS, MAX_LINKS
from exchange.money.currencies import active_currencies
from exchange.money.entry import COMMON_CURRENCIES


class ProfileForm(forms.Form):
    display_name = forms.CharField(label=_("Display name"), required=False,
                                   max_length=DISPLAY_NAME_MAX_CHARS, strip=False)
    bio = forms.CharField(label=_("About you"), required=False, max_length=BIO_MAX_CHARS,
                          strip=False, widget=forms.Textarea(attrs={"rows": 5}))
    links = forms.CharField(
        label=_("Links"), required=False, strip=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Up to %(count)d web addresses (http:// or https://), one per line.")
        % {"count": MAX_LINKS})
    collection_public = forms.BooleanField(
        label=_("Show my collection (the works I hold licences for) on my public page"),
        required=False)

    def changes(self) -> dict[str, Any]:
        data = self.cleaned_data
        links = [line.strip() for line in data["links"].splitlines() if line.strip()]
        return {"display_name": data["display_name"], "bio": data["bio"], "links": links,
                "collection_public": data["collection_public"]}


def _currency_choices() -> list[tuple[str, object]]:
    common = [code for code in COMMON_CURRENCIES if code in active_currencies()]
    others = sorted(active_currencies() - set(common))
    return [("", _("Any currency")), *[(code, code) for code in [*common, *others]]]


class SavedSearchForm(forms.Form):
    query = forms.CharField(label=_("Words in the title or description"), max_length=200,
                            strip=False)
    media_type = forms.ChoiceField(label=_("Media"), required=False,
                                   choices=[("", _("Any media")), *MediaType.choices])
    currency = forms.ChoiceField(label=_("Currency"), required=False, choices=_currency_choices)
    max_price_minor = forms.IntegerField(
        label=_("Highest price (minor units)"), required=False, min_value=1,
        help_text=_("In the currency's smallest unit: cents for EUR, won for KRW."))


class SwitchesForm(forms.Form):
    """One checkbox per (kind, channel), named ``<kind>.<channel>``."""

    def __init__(self, *args: Any, initial_table: dict[str, dict[str, bool]],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rows: list[tuple[str, list[forms.BoundField]]] = []
        for kind, label in notifications.KINDS:
            names = []
            for channel in Channel:
                name = f"{kind}.{channel}"
                self.fields[name] = forms.BooleanField(
                    required=False, label=f"{label}: {channel.label}",
                    initial=initial_table[kind][channel])
                names.append(name)
            self.rows.append((str(label), [self[name] for name in names]))

    def table(self) -> dict[str, dict[str, bool]]:
        table: dict[str, dict[str, bool]] = {}
        for name, value in self.cleaned_data.items():
            kind, channel = name.split(".")
            table.setdefault(kind, {})[channel] = bool(value)
        return table
