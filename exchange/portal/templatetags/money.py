from django import template

from exchange.money.currencies import format_minor
from exchange.money.entry import active_locale

register = template.Library()


@register.simple_tag
def price(work: object) -> str:
    return format_minor(work.price_minor, work.currency,  # type: ignore[attr-defined]
                        active_locale())


@register.filter
def filesize(num_bytes: int) -> str:
    size = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


@register.simple_tag
def amount(amount_minor: int | None, currency: str) -> str:
    """An amount in minor units, as people read it in the active language."""
    return format_minor(int(amount_minor or 0), currency, active_locale())


@register.filter
def price_of(work: object) -> str:
    """A work's price as people read it, for use inside a translated sentence."""
    return price(work)
