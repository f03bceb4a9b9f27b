"""A job's results as one download: every validated output and a manifest, zipped;
and, for a job of the demo renderer, its tiles assembled into a picture."""

from __future__ import annotations

import io
import json
import zipfile

from PIL import Image

from compute.demo import Tile, assemble
from exchange.compute_market.models import ComputeJob, UnitOutput, UnitState, WorkUnit


def results_archive(job: ComputeJob) -> bytes:
    """``unit-00000.out`` for each validated unit (named by its label when it has one),
    and ``manifest.json`` listing every unit with its state, hash, fuel and stop."""
    buffer = io.BytesIO()
    manifest = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        outputs = dict(
            UnitOutput.objects.filter(unit__job=job, unit__state=UnitState.VALIDATED)
            .values_list("unit_id", "data"))
        for unit in WorkUnit.objects.filter(job=job).order_by("seq").defer("input"):
            name = f"unit-{unit.seq:05d}.out"
            entry = {"seq": unit.seq, "label": unit.label, "state": unit.state,
                     "file": None, "sha256": unit.output_sha256 or None,
                     "size": unit.output_size, "stop": unit.stop or None,
                     "exit_status": unit.exit_status, "fuel": unit.fuel}
            data = outputs.get(unit.pk)
            if unit.state == UnitState.VALIDATED and data is not None:
                archive.writestr(name, bytes(data))
                entry["file"] = name
            manifest.append(entry)
        archive.writestr("manifest.json", json.dumps(
            {"job": str(job.pk), "name": job.name, "module": job.module_id,
             "runtime": job.runtime, "units": manifest}, indent=1))
    return buffer.getvalue()


def demo_render_png(job: ComputeJob) -> bytes | None:
    """The picture a finished demo-render job made (PNG), or None if it is not one or
    not every tile is validated."""
    shape = job.presentation.get("render") if isinstance(job.presentation, dict) else None
    if not isinstance(shape, dict):
        return None
    try:
        width, height = int(shape["width"]), int(shape["height"])
        placed = {int(seq): Tile(*tile) for seq, tile in shape["tiles"].items()}
    except (KeyError, TypeError, ValueError):
        return None
    rows = list(WorkUnit.objects.filter(job=job, state=UnitState.VALIDATED)
                .values_list("seq", "id", "output_sha256"))
    if len(rows) != len(placed):
        return None
    data = {(u, s): d for u, s, d in UnitOutput.objects.filter(unit__job=job)
            .values_list("unit_id", "sha256", "data")}
    try:
        pixels = assemble(width, height, ((placed[seq], bytes(data[(uid, sha)]))
                                          for seq, uid, sha in rows))
    except (KeyError, ValueError):
        return None
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, format="PNG")
    return out.getvalue()
