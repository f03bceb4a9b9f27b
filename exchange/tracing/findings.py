"""What a watermark search found, in the shape every medium's search returns it.

A search ends in one of the trace outcomes, the work it concerns, the licences it names
and the report's details; a found mark becomes a named licence here, whatever medium it
was read from (the payload is the same 64 bits for images, recordings, videos and
documents).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_noop

import watermark
from exchange.catalogue.models import Work
from exchange.core.jsontypes import JSONObject, JSONValue
from exchange.licensing.models import Licence
from exchange.tracing.models import TraceOutcome

#: outcome, work, licences, and the report's details (shown as they are: readable keys, stored
#: in English and marked, so the report page shows them in the reader's language)
Found = tuple[str, Work | None, list[Licence], JSONObject]


@dataclass(frozen=True)
class Read:
    """One informed read of a suspect against one candidate work."""

    work: Work
    #: how far the copy's fingerprint is from the master's (bits of 64 for a picture,
    #: the share of bits for a recording; 0 where a medium has no fingerprint)
    distance: float
    result: watermark.ExtractResult
    #: the same, and where the copy sits in the master, labelled for the report
    likeness: dict[str, JSONValue]


def named(read: Read) -> Found:
    """The licence a found mark names (or, for a payload never issued, no licence)."""
    result = read.result
    assert result.payload is not None
    licence = Licence.objects.filter(
        work=read.work, watermark_stored=Licence.stored_payload(result.payload)).first()
    # Shown as they are on the report page, so the keys are its labels.
    details: dict[str, JSONValue] = {
        gettext_noop("method"): gettext_noop("informed watermark read (registered to the master)"),
        gettext_noop("bit errors corrected"): result.bit_errors,
        gettext_noop("mark score (1 is a clean copy)"): round(result.score, 3),
        **read.likeness,
        gettext_noop("payload (hex)"): f"{result.payload:016x}",
    }
    if result.evidence:
        details[gettext_noop("marks that named the payload")] = ", ".join(result.evidence)
    if result.alignment is not None:
        details[gettext_noop("share of the master in the copy")] = f"{result.alignment.overlap:.0%}"
        details[gettext_noop("alignment correlation")] = round(result.alignment.correlation, 3)
    if licence is None:
        # The mark is keyed and checked, so this means a payload the platform never
        # issued for this work: worth a person's look, not a name.
        details[gettext_noop("reason")] = gettext_noop("the mark names no licence of this work")
        return TraceOutcome.NO_MARK, read.work, [], details
    return TraceOutcome.MARKED, read.work, [licence], details
