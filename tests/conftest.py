"""Test-session settings shared by every test file.

The result cache: a `joule compile` run by a test (in-process or as a
subprocess) must never read or write the user's cache, so the session points
``JOULE_CACHE_DIR`` at a fresh temporary directory (one per xdist worker),
removed at the end. Tests that exercise the cache pass their own ``--cache``.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_CACHE_DIR = tempfile.mkdtemp(prefix="joule-test-cache-")
os.environ["JOULE_CACHE_DIR"] = _CACHE_DIR  # set at import: subprocesses inherit it


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)
