"""Portal forms. Field rules come from catalogue.validation, the same as the API's."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from exchange.accounts.models import Role, User
from exchange.catalogue import validation
from exchange.catalogue.models import DeliveryMode, Work
from exchange.catalogue.terms import DEFAULT_USES, DEVICE_LIMIT_DEFAULT, USE_LABELS, USE_NAMES
from exchange.money.currencies import active_currencies, format_minor
from exchange.money.entry import (
    COMMON_CURRENCIES,
    AmountError,
    active_locale,
    major_text,
    parse_major,
)
from exchange.payments.providers import provider_options
from exchange.payments.providers.base import PaymentKind
from exchange.payments.services import payout_minimum


class SignupForm(UserCreationForm):
    """Sign up as a buyer or as a rights holder (``?role=rights_holder`` picks the second,
    from "Sell your work")."""

    email = forms.EmailField(label=_("Email"), required=True)
    role = forms.ChoiceField(
        label=_("Role"),
        choices=[
            (Role.BUYER.value, _("I buy and share works")),
            (Role.RIGHTS_HOLDER.value, _("I sell works I hold the rights to")),
        ],
        widget=forms.RadioSelect,
        initial=Role.BUYER.value,
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


def _currency_choices() -> list[tuple[str, Any]]:
    """The common currencies first, then every other in use, each with its name in the
    active language (about 160 codes are too many to scan)."""
    from babel.numbers import get_currency_name

    locale = active_locale()

    def named(code: str) -> tuple[str, str]:
        return code, f"{code} · {get_currency_name(code, locale=locale)}"

    common = [code for code in COMMON_CURRENCIES if code in active_currencies()]
    rest = sorted(active_currencies() - set(common))
    return [(gettext("Common"), [named(code) for code in common]),
            (gettext("All currencies"), [named(code) for code in rest])]


class AmountField(forms.CharField):
    """An amount typed in major units ("12.50"); the form turns it into minor units once
    it knows the currency (`MoneyFormMixin`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 32)
        super().__init__(**kwargs)

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        attrs = super().widget_attrs(widget)
        attrs.update(inputmode="decimal", autocomplete="off")
        return attrs


class MoneyFormMixin(forms.Form):
    """Pairs each amount field with the form's ``currency`` and puts the amount in minor
    units under ``<name>_minor`` in ``cleaned_data``; a wrong amount is that field's error."""

    amount_fields: ClassVar[tuple[str, ...]] = ()

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        for name in self.amount_fields:
            if name in data and "currency" in data:
                try:
                    data[f"{name}_minor"] = parse_major(data[name], data["currency"])
                except (AmountError, ValueError) as exc:
                    self.add_error(name, str(exc))
        return data


class TermsForm(MoneyFormMixin):
    amount_fields = ("price",)
    price = AmountField(
        label=_("Price"),
        help_text=_("In the currency's main unit, as buyers read it: 12.50 for €12.50, "
                    "15000 for ₩15,000."),
    )
    currency = forms.ChoiceField(label=_("Currency"), choices=_currency_choices,
                                 initial="EUR")
    allowed_uses = forms.MultipleChoiceField(
        label=_("Allowed uses"),
        # "view: Display or play the work privately.", the use's name in the reader's language.
        choices=[(k, format_lazy("{}: {}", USE_NAMES[k], text)) for k, text in USE_LABELS.items()],
        widget=forms.CheckboxSelectMultiple,
        initial=list(DEFAULT_USES),
    )
    licence_days = forms.IntegerField(label=_("Licence lifetime (days)"), initial=365)
    byte_allowance_multiple = forms.IntegerField(
        label=_("Byte allowance (x the work's size)"),
        initial=2,
        help_text=_("How much a buyer may download in all; above 1 leaves room for retries."),
    )
    # Not required: a form posted without it (an older page) keeps the work's limit, or
    # the default for a new work.
    device_limit = forms.IntegerField(
        label=_("Devices per buyer"),
        initial=DEVICE_LIMIT_DEFAULT,
        required=False,
        help_text=_("How many of one buyer's devices may hold the work at once (1 to 10)."),
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

    def clean_device_limit(self) -> int | None:
        value: int | None = self.cleaned_data["device_limit"]
        if value is not None:
            validation.validate_device_limit(value)
        return value

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        if "price_minor" in data and "currency" in data:
            try:
                validation.validate_price(data["price_minor"], data["currency"])
            except forms.ValidationError as exc:
                self.add_error("price", exc)
        return data


DELIVERY_MODE_HELP = _(
    "Sealed: every buyer gets the same sealed file and a personal key table that decrypts "
    "it straight into a copy marked for them, so even a modified agent never holds an "
    "unmarked copy (PNG, JPEG and WebP images; WAV, FLAC and MP3 recordings). Marked: the "
    "buyer's agent marks its copy. Fixed once the work is packaged.")


class WorkRegisterForm(TermsForm):
    title = forms.CharField(label=_("Title"), max_length=200)
    delivery_mode = forms.ChoiceField(
        label=_("Delivery"),
        choices=[("", _("Default: sealed for images that can be sealed, marked otherwise")),
                 *DeliveryMode.choices],
        required=False,
        help_text=DELIVERY_MODE_HELP,
    )
    description = forms.CharField(label=_("Description"), widget=forms.Textarea,
                                  required=False, max_length=5000)
    file = forms.FileField(
        label=_("File"),
        help_text=format_lazy(_("Image, audio, video or document; at most {mib} MiB."),
                              mib=settings.MAX_UPLOAD_BYTES // 2**20),
    )
    field_order = [
        "title",
        "description",
        "file",
        "price",
        "currency",
        "allowed_uses",
        "licence_days",
        "byte_allowance_multiple",
        "device_limit",
        "delivery_mode",
    ]


class WorkEditForm(TermsForm):
    title = forms.CharField(label=_("Title"), max_length=200)
    # Not required: a form posted without it (an older page) leaves the mode as it is.
    delivery_mode = forms.ChoiceField(label=_("Delivery"), choices=DeliveryMode.choices,
                                      required=False, help_text=DELIVERY_MODE_HELP)
    description = forms.CharField(label=_("Description"), widget=forms.Textarea,
                                  required=False, max_length=5000)
    field_order = [
        "title",
        "description",
        "price",
        "currency",
        "allowed_uses",
        "licence_days",
        "byte_allowance_multiple",
        "device_limit",
        "delivery_mode",
    ]

    @classmethod
    def for_work(cls, work: Work, data: Any = None) -> WorkEditForm:
        initial = {
            name: getattr(work, name)
            for name in (
                "title",
                "description",
                "currency",
                "allowed_uses",
                "licence_days",
                "byte_allowance_multiple",
                "device_limit",
                "delivery_mode",
            )
        }
        initial["price"] = major_text(work.price_minor, work.currency)
        return cls(data=data, initial=initial)

    def changed_terms(self, work: Work) -> dict[str, Any]:
        """The cleaned fields that differ from the work's (the typed price as minor units)."""
        fields = ("title", "description", "price_minor", "currency", "allowed_uses",
                  "licence_days", "byte_allowance_multiple", "device_limit", "delivery_mode")
        changes = {name: self.cleaned_data[name] for name in fields
                   if name in self.cleaned_data
                   and getattr(work, name) != self.cleaned_data[name]}
        if not changes.get("delivery_mode", True):  # left out of the form: unchanged
            del changes["delivery_mode"]
        if "device_limit" in changes and changes["device_limit"] is None:
            del changes["device_limit"]
        return changes


class _ProviderOptionsForm(forms.Form):
    """Adds the configured provider's own options (the test provider's behaviour, where
    it is on) after the form's fields, and gathers them into ``cleaned_data["options"]``,
    as the API's serializers do."""

    payment_kind: ClassVar[PaymentKind]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._options = provider_options(self.payment_kind)
        for option in self._options:
            # The provider declares its labels in English, marked for translation.
            self.fields[option.name] = forms.ChoiceField(
                label=_(option.label),
                choices=[(value, _(label)) for value, label in option.choices],
                initial=option.default, required=False,
            )

    def own_fields(self) -> list[forms.BoundField]:
        """The form's visible fields but the provider's options."""
        options = {option.name for option in self._options}
        return [field for field in self.visible_fields() if field.name not in options]

    def provider_fields(self) -> list[forms.BoundField]:
        """The provider's options, which only a test provider has (demo and tests): shown
        apart, under a heading that says so."""
        return [self[option.name] for option in self._options]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["options"] = {option.name: data.pop(option.name, "") or option.default
                           for option in self._options}
        return data


class TopUpForm(MoneyFormMixin, _ProviderOptionsForm):
    payment_kind = "topup"
    amount_fields = ("amount",)
    once = forms.CharField(widget=forms.HiddenInput, max_length=64)
    amount = AmountField(label=_("Amount"), help_text=_("10 for €10.00; 50000 for ₩50,000."))
    currency = forms.ChoiceField(label=_("Currency"), choices=_currency_choices,
                                 initial="EUR")


PAYOUT_SOURCES = {"earnings": _("Rights holder earnings"), "seeding": _("Seeding credit"),
                  "compute": _("Compute credit")}
"""The wallet's own names for the accounts a payout can come from."""


class PayoutForm(MoneyFormMixin, _ProviderOptionsForm):
    payment_kind = "payout"
    amount_fields = ("amount",)
    once = forms.CharField(widget=forms.HiddenInput, max_length=64)
    account = forms.ChoiceField(label=_("From"), choices=list(PAYOUT_SOURCES.items()))
    amount = AmountField(label=_("Amount"))
    currency = forms.ChoiceField(label=_("Currency"), choices=_currency_choices,
                                 initial="EUR")

    def _choice(self, name: str) -> forms.ChoiceField:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        return field

    def __init__(self, *args: Any, sources: dict[str, list[str]] | None = None,
                 **kwargs: Any) -> None:
        """``sources``: the accounts (earnings, seeding) the member holds money in, and in
        which currencies; only those are offered (a buyer has no earnings to pay out)."""
        super().__init__(*args, **kwargs)
        if sources is not None:
            self._choice("account").choices = [(key, label) for key, label
                                               in PAYOUT_SOURCES.items() if sources.get(key)]
            held = sorted({code for codes in sources.values() for code in codes})
            if held:
                self._choice("currency").choices = [(code, code) for code in held]
                self.fields["currency"].initial = held[0]
                minimums = ", ".join(format_minor(payout_minimum(code), code, active_locale())
                                     for code in held)
                self.fields["amount"].help_text = _("Payouts start at %(minimums)s.") % {
                    "minimums": minimums}


class BuyForm(forms.Form):
    """Buy a work on the web for one of the member's devices, at the price the page
    showed (a price changed since is refused, not charged)."""

    once = forms.CharField(widget=forms.HiddenInput, max_length=64)
    device = forms.ChoiceField(label=_("For the device"))
    expected_price_minor = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    expected_currency = forms.CharField(widget=forms.HiddenInput, max_length=3)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        from exchange.licensing.models import Device

        super().__init__(*args, **kwargs)
        device = self.fields["device"]
        assert isinstance(device, forms.ChoiceField)
        device.choices = [
            (device.pk, device.name)
            for device in Device.objects.filter(user=user, revoked_at__isnull=True)]


class LicenceDeviceForm(forms.Form):
    """Re-issue a licence to another of the member's devices, or move it there (the
    library page); once per form key."""

    once = forms.CharField(widget=forms.HiddenInput, max_length=64)
    device = forms.CharField(label=_("Device"), max_length=64)


class TraceForm(forms.Form):
    file = forms.FileField(
        label=_("Suspect copy"),
        help_text=format_lazy(
            _("The file you found. Images are recognised after cropping, resizing and "
              "recompression; recordings (WAV, FLAC, Ogg, MP3) from an excerpt of 7.5 s or "
              "more after re-encoding, gain and small speed changes; videos (MP4, WebM) "
              "from an excerpt of a few seconds after re-encoding, resizing or cropping; "
              "PDFs after re-saving or extracting pages, EPUBs after re-packaging. At most "
              "{mib} MiB."),
            mib=settings.MAX_TRACE_BYTES // 2**20,
        ),
    )
