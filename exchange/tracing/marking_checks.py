"""Sampled server-side checks that delivered copies were marked as their licences say.

For a receipt, the platform makes the copy an honest agent would have written, by the
same rule the agent applies (`watermark.rule`: the master marked with the work's
watermark key and the licence's payload, or the master itself where the rule leaves a
copy unmarked; for a sealed work, the work's sealed container opened with the licence's
personal table, as the agent does), and compares its SHA-256 with the one the device
signed. A difference,
or an "unmarked" report for a master the platform can mark, flags the receipt for a
person's review (the Django admin lists receipts needing review); it is evidence, not a
verdict: an agent on another version of the image library can differ honestly.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import IntegrityError, transaction

from exchange.audit.services import audit_record
from exchange.catalogue.storage import master_abspath
from exchange.licensing.services import package_get, package_keys, sealed_copy
from exchange.metering.models import Receipt
from exchange.tracing.models import MarkingCheck, MarkingVerdict
from watermark import rule as marking_rule


def _expected_copy(receipt: Receipt) -> tuple[bytes, bool]:
    """The bytes an honest agent writes for this licence, and whether they are marked."""
    licence = receipt.licence
    work = licence.work
    package = package_get(work.pk)
    assert package is not None  # sold, so packaged
    if package.sealed:
        return sealed_copy(package, payload=licence.watermark_payload), True
    master = master_abspath(work.master_path).read_bytes()
    if not marking_rule.marks(work.content_type, len(master)):
        return master, False
    copy = marking_rule.licensed_copy(master, work.content_type,
                                      package_keys(package).watermark_key,
                                      licence.watermark_payload)
    return copy.data, copy.marked


def receipt_marking_check(*, receipt: Receipt) -> MarkingCheck:
    """Check one receipt (once: a second call returns the first check)."""
    existing = MarkingCheck.objects.filter(receipt=receipt).first()
    if existing is not None:
        return existing
    expected, markable = _expected_copy(receipt)
    digest = hashlib.sha256(expected).hexdigest()
    if not receipt.marked and markable:
        verdict = MarkingVerdict.SKIPPED_MARK
        detail = (f"reported unmarked ({receipt.unmarked_reason or 'no reason'}), but the "
                  "platform marks this master")
    elif digest == receipt.output_sha256:
        verdict, detail = MarkingVerdict.MATCHES, ""
    else:
        verdict = MarkingVerdict.DIFFERS
        detail = ("the copy's SHA-256 is not that of the "
                  + ("marked copy" if markable else "master") + " the platform computes")
    try:
        with transaction.atomic():
            check = MarkingCheck.objects.create(receipt=receipt, verdict=verdict,
                                                expected_sha256=digest, detail=detail)
            if verdict != MarkingVerdict.MATCHES:
                # Added to whatever settlement flagged, read under a lock, not overwritten.
                current = Receipt.objects.select_for_update().only("review_reason").get(
                    pk=receipt.pk)
                reason = "; ".join(filter(None, [current.review_reason,
                                                 f"marking check: {detail}"]))
                Receipt.objects.filter(pk=receipt.pk).update(needs_review=True,
                                                             review_reason=reason[:300])
                audit_record(actor=None, action="receipt.marking_flagged", target=receipt,
                             data={"verdict": verdict, "licence": str(receipt.licence_id)})
    except IntegrityError:  # checked concurrently by another worker
        return MarkingCheck.objects.get(receipt=receipt)
    return check


def receipts_marking_check_sample(*, limit: int | None = None) -> int:
    """Check a random sample of receipts not checked yet; return how many were checked."""
    count = settings.MARKING_CHECKS_PER_RUN if limit is None else limit
    # Settled receipts only: settlement sets the review flag from the orders, and a check
    # made before it would be overwritten.
    sample = (Receipt.objects.filter(marking_check__isnull=True, settled_at__isnull=False)
              .select_related("licence__work").order_by("?")[:count])
    checked = 0
    for receipt in sample:
        try:
            receipt_marking_check(receipt=receipt)
        except OSError:
            continue  # a master missing from disk: the operator's problem, not the buyer's
        checked += 1
    return checked
