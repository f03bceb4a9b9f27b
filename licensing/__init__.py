"""Licensing's pure core: signed documents, keys, content-key wrapping, packaging.

``licensing.core`` imports no Django: the desktop agent and serving peers verify with it
offline, and the platform issues with it. The platform's side (keys stored encrypted at
rest, devices, licences, the JWKS endpoint, packaging, revocation) is the Django app
``exchange.licensing``. Formats: docs/TOKENS.md; threat model: docs/THREAT_MODEL.md.
"""
