"""The compute market's portal forms: a picture for the demo renderer, and a job of the
customer's own (a WebAssembly module and a file of work units).

The rules the service checks (replication, price, deadline, sizes) are the service's
(``exchange.compute_market.submission``); a form only turns what a person typed into
the service's terms: an amount in major units into minor units, a units file into
``UnitSpec``s, a number of days into a deadline.

**The units file** is one of two simple formats, told apart by its first bytes:

- *JSON lines*: one JSON object per line (blank lines are skipped), each the standard
  input of one unit: ``{"input": "text"}`` (UTF-8) or ``{"input_base64": "..."}``
  (bytes), with an optional ``"label"`` (at most 100 characters) and an optional
  ``"fuel"`` (this unit's own fuel cap, instead of the form's).
- *a ZIP archive*: each file in it is one unit's input, in the order of their names,
  labelled with its name; folders are skipped.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import zipfile
from io import BytesIO
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from compute.demo import MAX_SAMPLES, tiles
from exchange.accounts.models import User
from exchange.compute_market.submission import (
    MAX_FUEL_CAP,
    MAX_JOB_INPUT_BYTES,
    MAX_MODULE_BYTES,
    MAX_REPLICATION,
    MAX_UNIT_INPUT_BYTES,
    MAX_UNITS,
    UnitSpec,
)
from exchange.ledger.models import Account, AccountKind
from exchange.portal.forms import AmountField, MoneyFormMixin

#: largest units file read: the inputs' limit, as base64 inside JSON, plus room for labels
MAX_UNITS_FILE_BYTES = MAX_JOB_INPUT_BYTES * 3 // 2 + 4 * 2**20
#: the demo picture's bounds on the portal (the renderer takes more; a person rarely needs it)
MAX_PICTURE_SIDE = 1920
MAX_TILE_SIDE = 512
MAX_PORTAL_SAMPLES = min(256, MAX_SAMPLES)
DEFAULT_FUEL_CAP = 10**9


def wallet_currencies(user: User) -> list[str]:
    """The currencies the member's wallet holds money in: the ones a job can be paid in."""
    return sorted(Account.objects.filter(kind=AccountKind.WALLET, owner=user, reference="",
                                         balance__gt=0).values_list("currency", flat=True))


class JobForm(MoneyFormMixin):
    """What every job has: its form key, a name, the price per trillion fuel in one of the
    wallet's currencies, and how many devices of different members run each unit."""

    amount_fields = ("price",)
    once = forms.CharField(widget=forms.HiddenInput, max_length=64)
    name = forms.CharField(label=_("Name"), max_length=100, required=False)
    price = AmountField(
        label=_("Price per trillion fuel"),
        help_text=_("In the currency's main unit. Fuel counts the WebAssembly instructions a "
                    "unit runs; a trillion is about a quarter of an hour of one core."),
    )
    currency = forms.ChoiceField(label=_("Currency"), choices=())
    replication = forms.IntegerField(
        label=_("Replication"), min_value=2, max_value=MAX_REPLICATION, initial=2,
        help_text=_("How many devices of different members run each unit; a unit is "
                    "accepted when they agree."))

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        held = wallet_currencies(user)
        currency = self.fields["currency"]
        assert isinstance(currency, forms.ChoiceField)
        currency.choices = [(code, code) for code in held]
        if held and not self.initial.get("currency"):
            currency.initial = "EUR" if "EUR" in held else held[0]
        self.held = held


class RenderForm(JobForm):
    """The demo job: the ray tracer renders a picture, one tile per unit."""

    width = forms.IntegerField(label=_("Width (pixels)"), min_value=8,
                               max_value=MAX_PICTURE_SIDE, initial=320)
    height = forms.IntegerField(label=_("Height (pixels)"), min_value=8,
                                max_value=MAX_PICTURE_SIDE, initial=240)
    tile = forms.IntegerField(label=_("Tile size (pixels)"), min_value=8,
                              max_value=MAX_TILE_SIDE, initial=40,
                              help_text=_("Each square tile is one unit of work."))
    samples = forms.IntegerField(label=_("Samples per pixel"), min_value=1,
                                 max_value=MAX_PORTAL_SAMPLES, initial=8,
                                 help_text=_("More samples: a smoother picture, more fuel."))
    field_order = ["name", "width", "height", "tile", "samples", "price", "currency",
                   "replication"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if all(data.get(k) for k in ("width", "height", "tile")):
            count = len(tiles(data["width"], data["height"], data["tile"], data["tile"]))
            if count > MAX_UNITS:
                self.add_error("tile", gettext(
                    "That makes %(count)s tiles; a job has at most %(max)s units. Choose "
                    "larger tiles.") % {"count": f"{count:,}", "max": f"{MAX_UNITS:,}"})
        return data


def _read_upload(upload: UploadedFile, limit: int) -> bytes | None:
    """The file's bytes, or None if it is over ``limit`` (checked before reading)."""
    if upload.size is not None and upload.size > limit:
        return None
    data = upload.read(limit + 1)
    return None if len(data) > limit else data


def _json_lines_units(data: bytes, default_fuel: int) -> list[UnitSpec]:
    units = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise forms.ValidationError(
                gettext("Line %(line)s is not a JSON object.") % {"line": number}) from None
        if not isinstance(item, dict):
            raise forms.ValidationError(
                gettext("Line %(line)s is not a JSON object.") % {"line": number})
        text, encoded = item.get("input"), item.get("input_base64")
        if (text is None) == (encoded is None):
            raise forms.ValidationError(gettext(
                'Line %(line)s: give the input as "input" (text) or "input_base64", '
                "not both.") % {"line": number})
        if text is not None and not isinstance(text, str):
            raise forms.ValidationError(
                gettext('Line %(line)s: "input" is text.') % {"line": number})
        try:
            payload = (text.encode("utf-8") if text is not None
                       else base64.b64decode(str(encoded), validate=True))
        except (binascii.Error, ValueError):
            raise forms.ValidationError(
                gettext('Line %(line)s: "input_base64" is not base64.') % {"line": number},
            ) from None
        label = item.get("label", "")
        fuel = item.get("fuel", default_fuel)
        if not isinstance(label, str) or len(label) > 100:
            raise forms.ValidationError(gettext(
                'Line %(line)s: "label" is text of at most 100 characters.') % {"line": number})
        if type(fuel) is not int or not 1 <= fuel <= MAX_FUEL_CAP:
            raise forms.ValidationError(gettext(
                'Line %(line)s: "fuel" is a whole number from 1 to %(max)s.')
                % {"line": number, "max": f"{MAX_FUEL_CAP:,}"})
        units.append(UnitSpec(input=payload, fuel=fuel, label=label))
    return units


def _zip_units(data: bytes, default_fuel: int) -> list[UnitSpec]:
    try:
        archive = zipfile.ZipFile(BytesIO(data))
        members = sorted((info for info in archive.infolist() if not info.is_dir()),
                         key=lambda info: info.filename)
        if len(members) > MAX_UNITS:
            raise forms.ValidationError(gettext("The archive holds more than %(max)s files.")
                                        % {"max": f"{MAX_UNITS:,}"})
        # The sizes the archive declares are checked first; the read is bounded as well,
        # so an archive that lies about them cannot expand past the limits.
        if sum(info.file_size for info in members) > MAX_JOB_INPUT_BYTES or any(
                info.file_size > MAX_UNIT_INPUT_BYTES for info in members):
            raise forms.ValidationError(gettext(
                "A unit's input is at most %(unit)s bytes, and all of them together at most "
                "%(job)s.") % {"unit": f"{MAX_UNIT_INPUT_BYTES:,}",
                               "job": f"{MAX_JOB_INPUT_BYTES:,}"})
        units = []
        for info in members:
            with archive.open(info) as member:
                payload = member.read(MAX_UNIT_INPUT_BYTES + 1)
            if len(payload) > MAX_UNIT_INPUT_BYTES:
                raise forms.ValidationError(gettext("%(name)s is larger than it says.")
                                            % {"name": info.filename[:100]})
            units.append(UnitSpec(input=payload, fuel=default_fuel, label=info.filename[-100:]))
        return units
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
            EOFError, ValueError):
        raise forms.ValidationError(gettext("The ZIP archive could not be read.")) from None


def units_from_file(data: bytes, default_fuel: int) -> list[UnitSpec]:
    """The units a units file describes (see the module's docstring)."""
    units = (_zip_units(data, default_fuel) if data.startswith(b"PK\x03\x04")
             else _json_lines_units(data, default_fuel))
    if not units:
        raise forms.ValidationError(gettext("The file describes no unit."))
    return units


class UploadJobForm(JobForm):
    """A job of the customer's own: a WebAssembly (WASI) module and its units."""

    module = forms.FileField(
        label=_("Module (.wasm)"),
        help_text=format_lazy(_("A WebAssembly command (WASI preview 1), at most {mib} MiB."),
                              mib=MAX_MODULE_BYTES // 2**20))
    units = forms.FileField(
        label=_("Units file"),
        help_text=_("JSON lines (one unit per line) or a ZIP archive (one file per unit); "
                    "the format is described below."))
    fuel = forms.IntegerField(
        label=_("Fuel cap per unit"), min_value=1, max_value=MAX_FUEL_CAP,
        initial=DEFAULT_FUEL_CAP,
        help_text=_("The most fuel one unit may burn; a line of the units file may set its "
                    "own. The budget held is every unit at its cap on every device; what "
                    "is not spent comes back."))
    deadline_days = forms.IntegerField(
        label=_("Deadline (days from now)"), min_value=1, max_value=30, initial=7,
        help_text=_("Units not done by then are cancelled and their budget returned."))
    field_order = ["name", "module", "units", "fuel", "price", "currency", "replication",
                   "deadline_days"]

    def clean_module(self) -> bytes:
        data = _read_upload(self.cleaned_data["module"], MAX_MODULE_BYTES)
        if data is None:
            raise forms.ValidationError(gettext("The module is larger than %(mib)s MiB.")
                                        % {"mib": MAX_MODULE_BYTES // 2**20})
        return data

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload = data.get("units")
        if isinstance(upload, UploadedFile) and "fuel" in data:
            raw = _read_upload(upload, MAX_UNITS_FILE_BYTES)
            if raw is None:
                self.add_error("units", gettext("The units file is larger than %(mib)s MiB.")
                               % {"mib": MAX_UNITS_FILE_BYTES // 2**20})
            else:
                try:
                    data["unit_specs"] = units_from_file(raw, data["fuel"])
                except forms.ValidationError as error:
                    self.add_error("units", error)
        return data

    def deadline(self) -> dt.datetime:
        return timezone.now() + dt.timedelta(days=self.cleaned_data["deadline_days"])
