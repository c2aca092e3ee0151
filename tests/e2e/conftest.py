"""End-to-end tests: a local Ray, servers on loopback, runs in processes of their own."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    """The same test on local disk and on the S3 server."""
    from tests.support.store import Store

    if request.param == "local":
        return Store("local", tmp_path)
    s3, bucket = request.getfixturevalue("s3"), request.getfixturevalue("s3_bucket")
    return Store("s3", tmp_path, s3, bucket)
