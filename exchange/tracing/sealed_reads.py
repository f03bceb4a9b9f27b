"""Tracing a copy of a sealed work: test it against every licence issued for the work.

A sealed work's copies carry a Tardos-coded mark that no payload can be read out of
(docs/SEALED.md): instead, ``watermark.sealed.accuse`` scores the suspect against the
code word of each licence issued for the work and accuses only those whose score passes
a threshold set so that the chance of naming any innocent licence, among all of them, is
below its epsilon. So a trace names every accused licence (a coalition may have mixed
copies) and reports the best candidates with their scores and bounds, or, when nobody
passes, says "no licence named" with the best score and the threshold.
"""

from __future__ import annotations

from django.utils.translation import gettext_noop

from exchange.catalogue.models import Work
from exchange.catalogue.storage import master_abspath
from exchange.core.jsontypes import JSONObject, JSONValue
from exchange.licensing.models import Licence
from exchange.licensing.services import package_get, package_keys
from exchange.tracing.findings import Found
from exchange.tracing.models import TraceOutcome
from watermark.errors import WatermarkError
from watermark.sealed import Candidate, accuse

#: the key under which a report's details hold the sealed detection's figures
ACCUSATION = "accusation"


def work_is_sealed(work: Work) -> bool:
    """Whether the work was packaged sealed (its copies are traced by accusation)."""
    package = package_get(work.pk)
    return package is not None and package.sealed


def sealed_by_accusation(work: Work, suspect: bytes, likeness: JSONObject
                         ) -> tuple[Found, float | None] | None:
    """Accuse licences of ``work`` from ``suspect``: the finding (``MARKED`` naming every
    accused licence, or ``NO_MARK`` with "no licence named") and the best score.

    None if the suspect or master cannot be read against this work: the caller goes on
    to its next candidate work, as it does when a mark is not read.
    """
    package = package_get(work.pk)
    if package is None or not package.sealed:
        return None
    # Only the payloads are read for every licence (a popular work has a great many);
    # licence rows are loaded for the few the report names.
    payloads = sorted({Licence.payload_of(stored) for stored in Licence.objects.filter(work=work)
                       .values_list("watermark_stored", flat=True).iterator()})
    try:
        master = master_abspath(work.master_path).read_bytes()
        accusation = accuse(suspect, master, package_keys(package).watermark_key, payloads)
    except (OSError, WatermarkError, ValueError):
        return None
    reported = {c.payload for c in (*accusation.accused, *accusation.candidates)}
    licences = {licence.watermark_payload: licence for licence in Licence.objects.filter(
        work=work, watermark_stored__in=[Licence.stored_payload(p) for p in reported]
    ).select_related("buyer")}
    best = max((c.score for c in accusation.candidates), default=None)

    def row(candidate: Candidate, accused: bool) -> dict[str, JSONValue]:
        licence = licences.get(candidate.payload)
        return {
            "licence": str(licence.pk) if licence else None,
            "buyer": licence.buyer.username if licence else None,
            "issued_at": licence.issued_at.isoformat() if licence else None,
            "payload": f"{candidate.payload:016x}",
            "score": round(float(candidate.score), 3),
            "false_accusation_bound": float(f"{candidate.false_accusation_bound:.3g}"),
            "accused": accused,
        }

    accused_payloads = {c.payload for c in accusation.accused}
    shown = list(accusation.accused) + [c for c in accusation.candidates
                                        if c.payload not in accused_payloads]
    summary: dict[str, JSONValue] = {
        "threshold": round(float(accusation.threshold), 3),
        "licences_tested": accusation.licences,
        "epsilon": float(f"{accusation.epsilon:.3g}"),
        "best_score": None if best is None else round(float(best), 3),
        "candidates": [row(c, c.payload in accused_payloads) for c in shown],
    }
    details: dict[str, JSONValue] = {
        gettext_noop("method"): gettext_noop(
            "sealed delivery: the copy tested against every licence of the work"),
        **likeness,
        gettext_noop("licences tested"): accusation.licences,
        gettext_noop("accusation threshold (score)"): summary["threshold"],
        gettext_noop("best score"): summary["best_score"],
        gettext_noop("false-accusation bound for the whole set"): summary["epsilon"],
        ACCUSATION: summary,
    }
    registration = getattr(accusation, "registration", None)
    if registration is not None:
        details[gettext_noop("share of the master in the copy")] = f"{registration.overlap:.0%}"
    named = [licences[c.payload] for c in accusation.accused if c.payload in licences]
    if not named:
        details[gettext_noop("reason")] = gettext_noop("no licence named")
        return (TraceOutcome.NO_MARK, work, [], details), best
    return (TraceOutcome.MARKED, work, named, details), best
