"""End-to-end tests: a local Ray, servers on loopback, runs in processes of their own."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.integration)
