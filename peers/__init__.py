"""Peers: the platform's registry of agents and the index of which pieces each holds.

``agent`` is the desktop agent itself; it never imports Django and talks to the
platform only through the public REST API.
"""
