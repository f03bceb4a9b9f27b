"""Input and output shapes of the works API, kept apart so neither leaks into the other."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exchange.catalogue import validation
from exchange.catalogue.models import DeliveryMode, MediaType, Work
from exchange.catalogue.terms import (
    ALLOWED_USES,
    DEFAULT_USES,
    DEVICE_LIMIT_DEFAULT,
    DEVICE_LIMIT_MAX,
    DEVICE_LIMIT_MIN,
)
from exchange.core.fields import StrictCharField, StrictIntegerField
from exchange.money.currencies import format_minor
from exchange.money.fields import CurrencyField

P = ParamSpec("P")
R = TypeVar("R")


def _django_to_drf(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    try:
        return func(*args, **kwargs)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from exc


@extend_schema_field({"type": "string", "enum": list(ALLOWED_USES)})
class UseField(StrictCharField):
    """One use a licence may grant; the list is checked as a whole (``validate_uses``), so
    a refusal names ``allowed_uses``."""


class TermsFields(serializers.Serializer):
    """Price and terms, shared by create and update."""

    price_minor = StrictIntegerField(help_text="Price in minor units (cents for EUR, yen for JPY).")
    currency = CurrencyField(help_text="ISO 4217 code.")
    allowed_uses = serializers.ListField(
        child=UseField(),
        min_length=1,
        max_length=len(ALLOWED_USES) * 2,
        help_text=f"Any of: {', '.join(ALLOWED_USES)}.",
    )
    licence_days = StrictIntegerField(min_value=1)
    byte_allowance_multiple = StrictIntegerField(min_value=1)
    device_limit = StrictIntegerField(
        min_value=DEVICE_LIMIT_MIN, max_value=DEVICE_LIMIT_MAX,
        help_text="How many of one member's devices may hold a live licence at once.")

    def validate_currency(self, value: str) -> str:
        _django_to_drf(validation.validate_currency, value)
        return value

    def validate_allowed_uses(self, value: list[str]) -> list[str]:
        return _django_to_drf(validation.validate_uses, value)

    def validate_licence_days(self, value: int) -> int:
        _django_to_drf(validation.validate_licence_days, value)
        return value

    def validate_byte_allowance_multiple(self, value: int) -> int:
        _django_to_drf(validation.validate_byte_allowance_multiple, value)
        return value

    def validate_device_limit(self, value: int) -> int:
        _django_to_drf(validation.validate_device_limit, value)
        return value

    def _check_price(self, attrs: Mapping[str, object], instance: Work | None) -> None:
        if "price_minor" not in attrs and "currency" not in attrs:
            return
        price = attrs.get("price_minor", instance.price_minor if instance else None)
        currency = attrs.get("currency", instance.currency if instance else "")
        try:
            validation.validate_price(price, currency)  # type: ignore[arg-type]
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"price_minor": exc.messages}) from exc


DELIVERY_MODE_HELP = (
    "How buyers' copies are marked: 'marked' (the buyer's agent marks its copy) or "
    "'sealed' (every buyer gets the same sealed container and a personal table that "
    "decrypts it straight into a copy marked for them; PNG, JPEG and WebP images, WAV, "
    "FLAC and MP3 recordings). Default: sealed for those images, marked for everything "
    "else. "
    "Fixed once the work is packaged."
)


class WorkCreateIn(TermsFields):
    title = StrictCharField(max_length=200)
    delivery_mode = serializers.ChoiceField(choices=DeliveryMode.choices, required=False,
                                            help_text=DELIVERY_MODE_HELP)
    description = StrictCharField(max_length=5000, required=False, allow_blank=True, default="")
    media_type = serializers.ChoiceField(choices=MediaType.choices, required=False)
    file = serializers.FileField(allow_empty_file=True, use_url=False)
    allowed_uses = serializers.ListField(
        child=UseField(),
        min_length=1,
        max_length=len(ALLOWED_USES) * 2,
        required=False,
        default=list(DEFAULT_USES),
    )
    licence_days = StrictIntegerField(min_value=1, required=False, default=365)
    byte_allowance_multiple = StrictIntegerField(min_value=1, required=False, default=2)
    device_limit = StrictIntegerField(
        min_value=DEVICE_LIMIT_MIN, max_value=DEVICE_LIMIT_MAX, required=False,
        default=DEVICE_LIMIT_DEFAULT,
        help_text="How many of one member's devices may hold a live licence at once.")

    def validate(self, attrs: dict[str, object]) -> dict[str, object]:
        self._check_price(attrs, None)
        return attrs


class WorkUpdateIn(TermsFields):
    title = StrictCharField(max_length=200, required=False)
    delivery_mode = serializers.ChoiceField(choices=DeliveryMode.choices, required=False,
                                            help_text=DELIVERY_MODE_HELP)
    description = StrictCharField(max_length=5000, required=False, allow_blank=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False

    def validate(self, attrs: dict[str, object]) -> dict[str, object]:
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError(
                {name: [_("This field cannot be changed.")] for name in sorted(unknown)}
            )
        if not attrs:
            raise serializers.ValidationError(_("Nothing to change."))
        self._check_price(attrs, self.instance)
        return attrs


class PriceOut(serializers.Serializer):
    amount_minor = serializers.IntegerField(source="price_minor")
    currency = serializers.CharField()
    display = serializers.SerializerMethodField()

    def get_display(self, work: Work) -> str:
        return format_minor(work.price_minor, work.currency)


class TermsOut(serializers.Serializer):
    allowed_uses = serializers.ListField(child=serializers.CharField())
    licence_days = serializers.IntegerField()
    byte_allowance_multiple = serializers.IntegerField()
    byte_allowance = serializers.IntegerField()
    device_limit = serializers.IntegerField()


class WorkOut(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    price = PriceOut(source="*")
    terms = TermsOut(source="*")
    preview_url = serializers.SerializerMethodField()

    class Meta:
        model = Work
        fields = [
            "id",
            "title",
            "description",
            "media_type",
            "content_type",
            "delivery_mode",
            "owner",
            "price",
            "terms",
            "status",
            "size_bytes",
            "preview_url",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_preview_url(self, work: Work) -> str | None:
        if not work.preview_path:
            return None
        return reverse("api:work-preview", kwargs={"work_id": work.pk})


class OwnWorkOut(WorkOut):
    """What the owner sees besides the public fields."""

    class Meta(WorkOut.Meta):
        fields = [
            *WorkOut.Meta.fields,
            "sha256",
            "original_filename",
            "failure_reason",
            "withdrawn_at",
        ]
        read_only_fields = fields
