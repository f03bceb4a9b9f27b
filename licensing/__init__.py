"""Licensing: platform signing keys, licence tokens, manifests, revocation, content keys.

``licensing.core`` is pure (no Django import): the desktop agent and serving
peers verify with it offline, and the platform issues with it. The Django side
(key storage encrypted at rest, admin, JWKS endpoint, device registration,
packaging task) builds on that core. Formats: docs/TOKENS.md; threat model:
docs/THREAT_MODEL.md.
"""
