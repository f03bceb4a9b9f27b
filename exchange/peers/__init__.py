"""Peers: the platform's registry of agents and the index of which pieces each holds.

The agents themselves are the top-level `agent` package, which talks to this app only
through the public REST API. App label "peers" (its first home), so its tables and
migrations did not move.
"""
