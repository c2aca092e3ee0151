"""Unit tests: pure logic and the model core, no Ray cluster and no server."""

import sys

import pytest


@pytest.fixture(scope="session", autouse=True)
def no_ray_is_started():
    yield
    ray = sys.modules.get("ray")
    assert ray is None or not ray.is_initialized(), "a unit test started Ray: it belongs in tests/e2e"
