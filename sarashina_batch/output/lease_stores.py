"""Compare-and-swap on a small JSON object (the lease, the latest pointer), one way per store.

A store reads the object with a version token and writes it only if the token is still the
current one (None: only if there is no lease yet); otherwise it raises Conflict.
- S3 and S3-compatible stores: conditional PUT (If-None-Match: * to create, If-Match:
  <etag> to replace), which AWS S3 and SeaweedFS honour.
- Google Cloud Storage: upload with ifGenerationMatch (0 to create, the generation read
  to replace).
- Azure Blob Storage: upload without overwrite to create, with If-Match: <etag> to replace.
- Local disk (and NFS with working locks): read-check-write under fcntl.flock.
- Any other fsspec store: read, write, read back; a race inside that window is not
  excluded, so the lease there is advisory (the log says so).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from ..storage.filesystems import is_local, protocols, write_atomically
from .layout import LEASE, OutputLayout

log = logging.getLogger(__name__)


class Conflict(Exception):
    """The lease object changed between our read and our write."""


@dataclass
class Version:
    payload: dict[str, Any] | None
    token: str | None  # ETag, generation or content hash: what a compare-and-swap compares


def store_for(layout: OutputLayout, name: str = LEASE):
    """The compare-and-swap of `name` (a '_'-prefixed JSON file at the layout's root)."""
    found = protocols(layout.fs)
    if is_local(layout.fs):
        return LocalStore(layout, name)
    if found & {"s3", "s3a"}:
        return S3Store(layout, name)
    if found & {"gs", "gcs"}:
        return GcsStore(layout, name)
    if found & {"az", "abfs", "abfss"}:
        return AzureStore(layout, name)
    log.warning(
        "output %s: this store gets no conditional writes from sarashina-batch; the one-writer lease "
        "is advisory there (do not start two runs on one output at once)",
        layout.uri,
    )
    return AdvisoryStore(layout, name)


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


class LocalStore:
    """Compare-and-swap under an exclusive flock on a lock file beside the lease."""

    def __init__(self, layout: OutputLayout, name: str = LEASE):
        # _lease.json is locked by _lease.lock, _latest.json by _latest.lock
        self.path, self.lock_path = layout.path(name), layout.path(name.rsplit(".", 1)[0] + ".lock")
        self.fs = layout.fs
        os.makedirs(layout.root, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self):
        import fcntl

        with open(self.lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> Version:
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return Version(None, None)
        return Version(json.loads(data), hashlib.sha256(data).hexdigest())

    def read(self) -> Version:
        with self._locked():
            return self._read()

    def write(self, payload: dict[str, Any], expected: str | None) -> str:
        data = _encode(payload)
        with self._locked():
            if self._read().token != expected:
                raise Conflict()
            write_atomically(self.fs, self.path, data)
        return hashlib.sha256(data).hexdigest()


class S3Store:
    """Conditional PUTs: If-None-Match: * creates, If-Match: <etag> replaces."""

    def __init__(self, layout: OutputLayout, name: str = LEASE):
        self.fs = layout.fs
        self.bucket, self.key, _ = layout.fs.split_path(layout.path(name))

    def read(self) -> Version:
        try:
            response = self.fs.call_s3("get_object", Bucket=self.bucket, Key=self.key)
        except FileNotFoundError:
            return Version(None, None)
        data = _read_body(self.fs, response["Body"])
        return Version(json.loads(data), response["ETag"])

    def write(self, payload: dict[str, Any], expected: str | None) -> str:
        condition = {"IfMatch": expected} if expected else {"IfNoneMatch": "*"}
        try:
            response = self.fs.call_s3(
                "put_object", Bucket=self.bucket, Key=self.key, Body=_encode(payload), **condition
            )
        except Exception as err:
            if _is_s3_precondition_failure(err):
                raise Conflict() from None
            raise
        self.fs.invalidate_cache(f"{self.bucket}/{self.key}")
        return response["ETag"]


def _read_body(fs, body) -> bytes:
    from fsspec.asyn import sync

    async def read() -> bytes:
        async with body as stream:
            return await stream.read()

    return sync(fs.loop, read)


def _is_s3_precondition_failure(err: BaseException) -> bool:
    """S3 answered 412 PreconditionFailed (or 409 ConditionalRequestConflict) to a conditional
    PUT; s3fs rewords it as an OSError, so look at the botocore error it came from too."""
    seen: BaseException | None = err
    while seen is not None:
        response = getattr(seen, "response", None) or {}
        if response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
            return True
        if response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
            return True
        text = str(seen).lower()
        if "precondition" in text.replace("-", "") or "conditionalrequestconflict" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class GcsStore:
    """Generation preconditions: an upload with ifGenerationMatch=0 creates, with the
    generation read it replaces; GCS answers 412 otherwise (gcsfs raises FileExistsError)."""

    BOUNDARY = "sarashina-lease"

    def __init__(self, layout: OutputLayout, name: str = LEASE):
        self.fs = layout.fs
        self.bucket, self.key, _ = layout.fs.split_path(layout.path(name))

    def read(self) -> Version:
        try:
            headers, data = self.fs.call("GET", "b/{}/o/{}", self.bucket, self.key, alt="media")
        except FileNotFoundError:
            return Version(None, None)
        # The generation of the very bytes returned, so no other write can slip in between.
        return Version(json.loads(data), headers["x-goog-generation"])

    def write(self, payload: dict[str, Any], expected: str | None) -> str:
        # A multipart upload (metadata + body in one request), as gcsfs itself sends: every
        # GCS implementation checks the precondition on it.
        metadata = json.dumps({"name": self.key, "contentType": "application/json"})
        body = (
            f"--{self.BOUNDARY}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n"
            f"--{self.BOUNDARY}\r\nContent-Type: application/json\r\n\r\n"
        ).encode()
        body += _encode(payload) + f"\r\n--{self.BOUNDARY}--".encode()
        try:
            written = self.fs.call(
                "POST",
                f"{self.fs._location}/upload/storage/v1/b/{{}}/o",
                self.bucket,
                uploadType="multipart",
                ifGenerationMatch=expected or "0",
                data=body,
                json_out=True,
                headers={"Content-Type": f'multipart/related; boundary="{self.BOUNDARY}"'},
            )
        except FileExistsError:
            raise Conflict() from None
        self.fs.invalidate_cache(f"{self.bucket}/{self.key}")
        return str(written["generation"])


class AzureStore:
    """ETag conditions: an upload without overwrite creates (409 if the blob exists), one
    with If-Match: <etag> replaces (412 if it changed)."""

    def __init__(self, layout: OutputLayout, name: str = LEASE):
        self.fs = layout.fs
        self.container, self.blob, _ = layout.fs.split_path(layout.path(name))

    def _run(self, operation):
        from fsspec.asyn import sync

        async def call():
            async with self.fs.service_client.get_blob_client(self.container, self.blob) as client:
                return await operation(client)

        return sync(self.fs.loop, call)

    def read(self) -> Version:
        from azure.core.exceptions import ResourceNotFoundError

        async def download(client):
            stream = await client.download_blob()
            return await stream.readall(), stream.properties.etag

        try:
            data, etag = self._run(download)
        except ResourceNotFoundError:
            return Version(None, None)
        return Version(json.loads(data), etag)

    def write(self, payload: dict[str, Any], expected: str | None) -> str:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        condition = (
            {"overwrite": True, "etag": expected, "match_condition": MatchConditions.IfNotModified}
            if expected
            else {"overwrite": False}
        )

        async def upload(client):
            return await client.upload_blob(_encode(payload), **condition)

        try:
            written = self._run(upload)
        except (ResourceExistsError, ResourceModifiedError):
            raise Conflict() from None
        self.fs.invalidate_cache(f"{self.container}/{self.blob}")
        return written["etag"]


class AdvisoryStore:
    """Read-compare-write without a conditional primitive: narrows races, cannot exclude them."""

    def __init__(self, layout: OutputLayout, name: str = LEASE):
        self.fs, self.path = layout.fs, layout.path(name)

    def read(self) -> Version:
        try:
            payload = json.loads(self.fs.cat_file(self.path))
        except FileNotFoundError:
            return Version(None, None)
        return Version(payload, hashlib.sha256(_encode(payload)).hexdigest())

    def write(self, payload: dict[str, Any], expected: str | None) -> str:
        if self.read().token != expected:
            raise Conflict()
        write_atomically(self.fs, self.path, _encode(payload))
        time.sleep(0.5)  # let a racing writer land, then check that ours is what stuck
        current = self.read()
        if current.payload != json.loads(_encode(payload)):
            raise Conflict()
        return current.token
