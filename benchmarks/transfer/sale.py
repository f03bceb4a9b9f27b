"""The sale a benchmark child downloads: what the platform handed the buyer, read back.

``run.py`` packages the work, licenses it to a fresh buyer device and writes this JSON;
the download children verify it as the agent would (manifest and licence signatures,
the licence's device) before they fetch a byte.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from licensing.core import DeviceKeys, KeyRing, Licence, Manifest, read_licence, read_manifest


@dataclass(frozen=True)
class BoughtWork:
    data: dict[str, Any]  # the JSON as written: tokens, the master's SHA-256, key file
    manifest: Manifest
    device: DeviceKeys
    licence: Licence


def read_sale(path: Path) -> BoughtWork:
    data = json.loads(path.read_text())
    now = int(time.time())
    ring = KeyRing.from_jwks(data["jwks"])
    manifest = read_manifest(data["manifest"], keyring=ring, now=now)
    device = DeviceKeys.load(data["device_key_file"])
    licence = read_licence(data["licence"], keyring=ring, now=now, device_id=device.device_id)
    return BoughtWork(data, manifest, device, licence)
