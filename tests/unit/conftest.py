"""Unit tests: pure logic, the model core, and whole runs in this process (run/runners.py), no Ray."""

import sys

import pytest


def _ray_running() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


@pytest.fixture(scope="module", autouse=True)
def no_ray_is_started():
    # Per module, against what was there before: in a whole-suite run the end-to-end tests'
    # own Ray may still be up when the unit tests run.
    before = _ray_running()
    yield
    assert before or not _ray_running(), "a unit test started Ray: it belongs in tests/e2e"
