"""Portal forms. Field rules come from catalogue.validation, the same as the API's."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm

from exchange.accounts.models import Role, User
from exchange.catalogue import validation
from exchange.catalogue.models import Work
from exchange.catalogue.terms import ALLOWED_USES, DEFAULT_USES
from exchange.money.currencies import active_currencies
from exchange.payments.providers import provider_options
from exchange.payments.providers.base import PaymentKind


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True)
    role = forms.ChoiceField(
        choices=[
            (Role.BUYER.value, "I buy and share works"),
            (Role.RIGHTS_HOLDER.value, "I sell works I hold the rights to"),
        ],
        widget=forms.RadioSelect,
        initial=Role.BUYER.value,
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


def _currency_choices() -> list[tuple[str, str]]:
    return [(code, code) for code in sorted(active_currencies())]


class TermsForm(forms.Form):
    price_minor = forms.IntegerField(
        label="Price (minor units)",
        min_value=1,
        help_text="In the currency's smallest unit: 1250 EUR means €12.50; 1500 JPY means ¥1,500.",
    )
    currency = forms.ChoiceField(choices=_currency_choices, initial="EUR")
    allowed_uses = forms.MultipleChoiceField(
        choices=[(k, f"{k}: {v}") for k, v in ALLOWED_USES.items()],
        widget=forms.CheckboxSelectMultiple,
        initial=list(DEFAULT_USES),
    )
    licence_days = forms.IntegerField(label="Licence lifetime (days)", initial=365)
    byte_allowance_multiple = forms.IntegerField(
        label="Byte allowance (x the work's size)",
        initial=2,
        help_text="How much a buyer may download in all; above 1 leaves room for retries.",
    )

    def clean_currency(self) -> str:
        value: str = self.cleaned_data["currency"]
        validation.validate_currency(value)
        return value

    def clean_allowed_uses(self) -> list[str]:
        return validation.validate_uses(self.cleaned_data["allowed_uses"])

    def clean_licence_days(self) -> int:
        value: int = self.cleaned_data["licence_days"]
        validation.validate_licence_days(value)
        return value

    def clean_byte_allowance_multiple(self) -> int:
        value: int = self.cleaned_data["byte_allowance_multiple"]
        validation.validate_byte_allowance_multiple(value)
        return value

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        if "price_minor" in data and "currency" in data:
            try:
                validation.validate_price(data["price_minor"], data["currency"])
            except forms.ValidationError as exc:
                self.add_error("price_minor", exc)
        return data


class WorkRegisterForm(TermsForm):
    title = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea, required=False, max_length=5000)
    file = forms.FileField(
        help_text=(
            "Image, audio, video or document; "
            f"at most {settings.MAX_UPLOAD_BYTES // 2**20} MiB."
        )
    )
    field_order = [
        "title",
        "description",
        "file",
        "price_minor",
        "currency",
        "allowed_uses",
        "licence_days",
        "byte_allowance_multiple",
    ]


class WorkEditForm(TermsForm):
    title = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea, required=False, max_length=5000)
    field_order = [
        "title",
        "description",
        "price_minor",
        "currency",
        "allowed_uses",
        "licence_days",
        "byte_allowance_multiple",
    ]

    @classmethod
    def for_work(cls, work: Work, data: Any = None) -> WorkEditForm:
        initial = {
            name: getattr(work, name)
            for name in (
                "title",
                "description",
                "price_minor",
                "currency",
                "allowed_uses",
                "licence_days",
                "byte_allowance_multiple",
            )
        }
        return cls(data=data, initial=initial)


class _ProviderOptionsForm(forms.Form):
    """Adds the configured provider's own options (the test provider's behaviour, where
    it is on) after the form's fields, and gathers them into ``cleaned_data["options"]``,
    as the API's serializers do."""

    payment_kind: ClassVar[PaymentKind]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._options = provider_options(self.payment_kind)
        for option in self._options:
            self.fields[option.name] = forms.ChoiceField(
                label=option.label, choices=option.choices, initial=option.default,
                required=False,
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["options"] = {option.name: data.pop(option.name, "") or option.default
                           for option in self._options}
        return data


class TopUpForm(_ProviderOptionsForm):
    payment_kind = "topup"
    once = forms.CharField(widget=forms.HiddenInput, max_length=64)
    amount_minor = forms.IntegerField(label="Amount (minor units)", min_value=1,
                                      help_text="1000 EUR means €10.00.")
    currency = forms.ChoiceField(choices=_currency_choices, initial="EUR")


class PayoutForm(_ProviderOptionsForm):
    payment_kind = "payout"
    once = forms.CharField(widget=forms.HiddenInput, max_length=64)
    account = forms.ChoiceField(choices=[("earnings", "Royalty earnings"),
                                         ("seeding", "Seeding credit")])
    amount_minor = forms.IntegerField(
        label="Amount (minor units)", min_value=1,
        help_text=f"Payouts start at {settings.PAYOUT_MINIMUM_MAJOR} in the currency's major unit.",
    )
    currency = forms.ChoiceField(choices=_currency_choices, initial="EUR")


class TraceForm(forms.Form):
    file = forms.FileField(
        label="Suspect copy",
        help_text=(
            "The file you found. Images are recognised after cropping, resizing and "
            "recompression; recordings (WAV, FLAC, Ogg, MP3) from an excerpt of 7.5 s or "
            "more after re-encoding, gain and small speed changes; other media only as "
            "exact copies. "
            f"At most {settings.MAX_TRACE_BYTES // 2**20} MiB."
        ),
    )
