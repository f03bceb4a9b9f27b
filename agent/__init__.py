"""The desktop agent: searches, buys, downloads from peers, serves what it holds.

``python -m agent --help``. It never imports Django: it talks to the platform only
through the public REST API (``platform.py``) and verifies everything offline with
``licensing.core``.
"""

__version__ = "0.1.0"
