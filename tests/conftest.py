"""Shared fixtures: a tiny model built on the fly, a local Ray, small corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# Workers push their metrics to the node's Prometheus endpoint every second (Ray's default
# is 10 s), so a test sees them while a short run is still going.
os.environ.setdefault("RAY_metrics_report_interval_ms", "1000")
# gcsfs >= 2026 probes every bucket's type over Google's gRPC control API first, which the GCS
# emulator does not serve (a 60 s timeout per bucket); the plain JSON API is what it speaks.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    from sarashina_batch.model.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-sarashina"))


@pytest.fixture(scope="session")
def local_ray():
    import ray

    if not ray.is_initialized():
        # address="local": always a Ray of its own, never a cluster found on the machine.
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    # Ray Data binds its log handlers to the sys.stderr of its first run: make that the
    # session's stream, not one test's capsys stream that is closed after the test.
    ray.data.range(1).take_all()
    yield ray
    ray.shutdown()


@pytest.fixture
def corpus_dir(tmp_path) -> Path:
    from tests.support.corpus import write_mixed_corpus

    return write_mixed_corpus(tmp_path / "corpus")


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A real S3 API server (SeaweedFS) on 127.0.0.1 for the whole session."""
    from tests.support.s3_server import SeaweedS3

    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs")).start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3, request):
    """'bucket/prefix' that is fresh and empty for this test (one bucket for the session:
    SeaweedFS gives every bucket its own volumes)."""
    import re

    if not getattr(s3, "session_bucket", None):
        s3.session_bucket = "sbtests"
        s3.client().create_bucket(Bucket=s3.session_bucket)
    prefix = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + "-" + os.urandom(3).hex()
    return f"{s3.session_bucket}/{prefix}"


@pytest.fixture(scope="session")
def gcs(tmp_path_factory):
    """A Google Cloud Storage emulator (fake-gcs-server) on 127.0.0.1 for the session."""
    from tests.support.cloud_emulators import FakeGcs

    server = FakeGcs(tmp_path_factory.mktemp("fake-gcs")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """Azure Blob Storage's emulator (Azurite) on 127.0.0.1 for the session. Outside CI a
    machine without it skips these tests (npm install --prefix .azurite azurite@3 adds it)."""
    from tests.support.cloud_emulators import Azurite, azurite_binary

    if azurite_binary() is None and not os.environ.get("CI"):
        pytest.skip("Azurite is not installed: npm install --prefix .azurite azurite@3")
    server = Azurite(tmp_path_factory.mktemp("azurite")).start()
    yield server
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    """The same test on local disk and on the S3 server (a process on loopback, not Ray)."""
    from tests.support.store import Store

    if request.param == "local":
        return Store("local", tmp_path)
    s3, bucket = request.getfixturevalue("s3"), request.getfixturevalue("s3_bucket")
    return Store("s3", tmp_path, s3, bucket)
