"""Where everything lives under output.uri, and the one reader and writer of each record.

Readers of the dataset see only part-*.parquet; every '_'- or '.'-prefixed path is
bookkeeping they skip. The names this job writes are fixed patterns, so that it can tell its
own files from anyone else's and never delete a file it did not write.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..input.units import UNIT_PATTERN, UNIT_REGEX
from ..storage.errors import with_retries
from ..storage.filesystems import (
    TEMPORARY_PREFIX,
    StoreSpec,
    full_uri,
    is_local,
    join,
    open_fs,
    remove_files,
    write_atomically,
)
from .records import (
    CommitMarker,
    IndexState,
    LatestPointer,
    LeaseRecord,
    QuantizationRecord,
    RunInfo,
    RunManifest,
    instant,
)

REJECTED_DIR = "_rejected"
COMMITS_DIR = "_commits"
MANIFEST_DIR = "_manifest"
RUN_INFO = "_sarashina_batch.json"  # the output's fingerprint: its presence makes a folder ours
LEASE = "_lease.json"
LEASE_LOCK = "_lease.lock"
LATEST = "_latest.json"  # at a versioned output's root
INDEX_DIR = "_index"  # the content-key index (output/content_index.py): derived data
RUNS_DIR = "_runs"  # a run's scratch files (vectors staged for reuse), removed when it ends
QUANTIZATION = "_quantization.json"  # the int8 ranges of an output that writes int8 vectors
# Names this job may create at the top of an output before RUN_INFO exists.
BOOKKEEPING = {RUN_INFO, LEASE, LEASE_LOCK, REJECTED_DIR, COMMITS_DIR, MANIFEST_DIR, INDEX_DIR, RUNS_DIR, QUANTIZATION}
RUN_ID_REGEX = r"\d{8}T\d{6}Z-[0-9a-f]{6}"

# The only data file names this job writes, and the hidden temporaries they are written as.
PART_PATTERN = re.compile(rf"^part-(?P<unit>{UNIT_REGEX})\.parquet$")
TEMPORARY_PATTERN = re.compile(
    rf"^{re.escape(TEMPORARY_PREFIX)}[0-9a-f]{{8}}-(part-{UNIT_REGEX}\.parquet|"
    rf"{UNIT_REGEX}\.json)$"
)


class NotAnOutput(ValueError):
    """A URI given as an output holds no sarashina-batch output."""


def part_name(unit: str) -> str:
    """The one data file (and the one rejected-rows file) of a unit: fixed by the plan."""
    return f"part-{unit}.parquet"


def unit_of_part(name: str) -> str | None:
    """'part-<unit>.parquet' -> '<unit>'; None for any name this job does not write."""
    match = PART_PATTERN.match(name)
    return match.group("unit") if match else None


def is_our_temporary(name: str) -> bool:
    return bool(TEMPORARY_PATTERN.match(name))


def unit_of_marker(name: str) -> str | None:
    """'<unit>.json' under _commits/ -> '<unit>' (a marker's hidden temporary is not one)."""
    unit = name[: -len(".json")] if name.endswith(".json") else ""
    return unit if UNIT_PATTERN.match(unit) else None


def _unfenced() -> None:
    """The fence of a layout no run has taken: reading it, or a test's hand-made output."""


class OutputLayout:
    """Names of the output's files, their listings, and every change a run makes to them.

    Each change (a part, a marker, the run info, the latest pointer, a delete) first calls the
    layout's fence: once a run holds the output's lease, that is a check against the store
    that the lease is still this run's (output/lease.py), so a run that lost it changes
    nothing more. Only a run's own manifest, named by its run id, is written unfenced: a
    run's history records even a run that lost the output."""

    @classmethod
    def at(cls, store: StoreSpec) -> OutputLayout:
        return cls(store.uri, store.options)

    def __init__(self, uri: str, storage_options: dict[str, Any]):
        self.fs, self.root = open_fs(uri, storage_options)
        self.uri = full_uri(self.fs, self.root, like=uri)
        self._fence: Callable[[], None] = _unfenced

    def fenced_by(self, fence: Callable[[], None]) -> None:
        """Call `fence` (it raises to refuse) before every change to the output."""
        self._fence = fence

    # changes ---------------------------------------------------------------
    def allow_change(self) -> None:
        """Raise unless the fence allows a change now (for changes made through another
        writer: the compare-and-swap of output/lease_stores.py)."""
        self._fence()

    def write_file(self, path: str, data: bytes) -> None:
        """A whole file written atomically (a part), once the fence allows it."""
        self._fence()
        if is_local(self.fs):
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with_retries(lambda: write_atomically(self.fs, path, data), f"writing {path}")

    def remove(self, paths: list[str]) -> int:
        """Delete these files of ours, once the fence allows it (a file already gone is fine)."""
        if not paths:
            return 0
        self._fence()
        return remove_files(self.fs, paths)

    # names -----------------------------------------------------------------
    def data_part(self, unit_id: str) -> str:
        return join(self.root, part_name(unit_id))

    def rejected_part(self, unit_id: str) -> str:
        return join(self.root, REJECTED_DIR, part_name(unit_id))

    def commit_marker(self, unit_id: str) -> str:
        return join(self.root, COMMITS_DIR, f"{unit_id}.json")

    def manifest(self, run_id: str) -> str:
        return join(self.root, MANIFEST_DIR, f"run-{run_id}.json")

    def path(self, *parts: str) -> str:
        return join(self.root, *parts)

    def run_scratch(self, run_id: str, *parts: str) -> str:
        """A file of this run's own scratch folder (_runs/<run id>/...)."""
        return join(self.root, RUNS_DIR, run_id, *parts)

    # listings --------------------------------------------------------------
    def list_names(self, *subdir: str) -> list[str]:
        """File names directly under root/subdir (one listing; empty if it does not exist)."""
        path = join(self.root, *subdir)
        try:
            # The parent's cached listing too: fsspec answers a folder missing from it as absent,
            # and a folder another process created since (the index's buckets) would stay unseen.
            self.fs.invalidate_cache(path)
            self.fs.invalidate_cache(path.rsplit("/", 1)[0])
            entries = [entry.rstrip("/") for entry in self.fs.ls(path, detail=False)]
        except (FileNotFoundError, NotADirectoryError):  # a parent is a file: nothing is there either
            return []
        # An object store's console "folder" (a zero-byte 'prefix/' object) lists as the folder
        # itself: it is not a file in it.
        return [entry.rsplit("/", 1)[-1] for entry in entries if entry != path.rstrip("/")]

    def size(self, path: str) -> int:
        """Bytes of a file as the store has it now (FileNotFoundError: none there)."""
        # The folder's cached listing too: adlfs answers info() from it, and it may predate the file.
        self.fs.invalidate_cache(path)
        self.fs.invalidate_cache(path.rsplit("/", 1)[0])
        return int(with_retries(lambda: self.fs.info(path), f"looking at {path}")["size"])

    def committed_units(self) -> set[str]:
        """Units whose marker exists."""
        return {unit for unit in map(unit_of_marker, self.list_names(COMMITS_DIR)) if unit}

    def ensure_local_dirs(self) -> None:
        """Local disks need folders before files; object stores have none (and s3fs would
        create a missing bucket here, hiding a typo in output.uri)."""
        if is_local(self.fs):
            for sub in ("", REJECTED_DIR, COMMITS_DIR, MANIFEST_DIR):
                self.fs.makedirs(join(self.root, sub) if sub else self.root, exist_ok=True)

    # records ---------------------------------------------------------------
    def read_run_info(self) -> RunInfo | None:
        return self._read(self.path(RUN_INFO), RunInfo)

    def write_run_info(self, info: RunInfo) -> None:
        self._write(self.path(RUN_INFO), info.to_json())

    def read_marker(self, unit_id: str) -> CommitMarker | None:
        path = self.commit_marker(unit_id)
        return with_retries(lambda: self._read(path, CommitMarker), f"reading {path}")

    def write_marker(self, marker: CommitMarker) -> None:
        self._write(self.commit_marker(marker.unit), marker.to_json())

    def read_markers(self, threads: int = 32) -> list[CommitMarker]:
        """Every commit marker (one small read each, in parallel: object stores answer many
        small reads at once, not quickly one after another)."""
        with ThreadPoolExecutor(max_workers=threads) as pool:
            found = pool.map(self.read_marker, sorted(self.committed_units()))
            return [marker for marker in found if marker is not None]

    def write_manifest(self, manifest: RunManifest) -> str:
        path = self.manifest(manifest.run_id)
        self._write(path, manifest.to_json(), fenced=False)
        return path

    def read_manifests(self) -> list[RunManifest]:
        """The run history: every run's manifest, oldest first."""
        names = sorted(n for n in self.list_names(MANIFEST_DIR) if n.startswith("run-") and n.endswith(".json"))
        runs = [self._read(join(self.root, MANIFEST_DIR, name), RunManifest) for name in names]
        return sorted((run for run in runs if run), key=lambda run: instant(run.finished_at))

    def read_lease(self) -> LeaseRecord | None:
        return self._read(self.path(LEASE), LeaseRecord)

    def read_index_state(self) -> IndexState | None:
        return self._read(self.path(INDEX_DIR, "_state.json"), IndexState)

    def write_index_state(self, state: IndexState) -> None:
        self._write(self.path(INDEX_DIR, "_state.json"), state.to_json())

    def read_quantization(self) -> QuantizationRecord | None:
        return self._read(self.path(QUANTIZATION), QuantizationRecord)

    def write_quantization(self, record: QuantizationRecord) -> None:
        self._write(self.path(QUANTIZATION), record.to_json())

    def read_latest(self) -> LatestPointer | None:
        return self._read(self.path(LATEST), LatestPointer)

    # JSON files ------------------------------------------------------------
    def _write(self, path: str, payload: dict[str, Any], fenced: bool = True) -> None:
        if fenced:
            self._fence()
        text = json.dumps(payload, ensure_ascii=False, indent=1, default=str)
        if is_local(self.fs):  # a run that fails before it prepared the output still records itself
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with_retries(lambda: write_atomically(self.fs, path, text.encode("utf-8")), f"writing {path}")

    def _read(self, path: str, record: type):
        try:
            # One whole-object read: a file object pins the version it first saw (S3's If-Match)
            # and fails when a writer replaces the record meanwhile (the lease, every heartbeat).
            data = self.fs.cat_file(path)
            return record.from_json(json.loads(data), where=path)
        except (FileNotFoundError, NotADirectoryError):  # a parent that is a file holds nothing either
            return None
