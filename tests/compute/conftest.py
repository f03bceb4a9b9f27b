"""Fixtures for the compute tests: one engine for in-process runs, one worker sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from wasmtime import Engine

from compute.sandbox import make_engine
from compute.worker import Sandbox


@pytest.fixture(scope="session")
def engine() -> Engine:
    return make_engine()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    return Sandbox(Path(tmp_path_factory.mktemp("compute-cache")) / "cache")
