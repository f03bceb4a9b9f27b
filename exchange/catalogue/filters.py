import django_filters
from django import forms

from exchange.catalogue.models import MediaType, Work, WorkStatus


class MinorUnitsFilter(django_filters.NumberFilter):  # type: ignore[misc]
    """A price in minor units: a whole number, as the schema says (``NumberFilter`` alone
    would take ``0.5``)."""

    field_class = forms.IntegerField


class WorkFilter(django_filters.FilterSet):  # type: ignore[misc]  # django-filter is untyped
    media_type = django_filters.ChoiceFilter(choices=MediaType.choices)
    currency = django_filters.CharFilter(lookup_expr="exact")
    owner = django_filters.CharFilter(field_name="owner__username")
    status = django_filters.ChoiceFilter(choices=WorkStatus.choices)
    min_price = MinorUnitsFilter(field_name="price_minor", lookup_expr="gte")
    max_price = MinorUnitsFilter(field_name="price_minor", lookup_expr="lte")

    class Meta:
        model = Work
        fields = ["media_type", "currency", "owner", "status", "min_price", "max_price"]
