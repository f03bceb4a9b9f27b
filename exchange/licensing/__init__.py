"""The platform side of licensing: keys at rest, devices, licences, packaging, revocation.

Builds on the pure `licensing.core`, which the agent uses offline. App label "licensing"
(its first home), so its tables and migrations did not move.
"""
