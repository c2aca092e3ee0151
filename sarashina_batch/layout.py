"""Where everything lives under output.uri. Readers of the dataset see only part-*.parquet;
every '_'- or '.'-prefixed path is bookkeeping they skip."""

from __future__ import annotations

import json
from typing import Any

from .storage import full_uri, is_local, join, open_fs, write_atomically
from .storage_errors import with_retries
from .units import UNIT_PATTERN, part_name

REJECTED_DIR = "_rejected"
COMMITS_DIR = "_commits"
MANIFEST_DIR = "_manifest"
RUN_INFO = "_sarashina_batch.json"  # the output's fingerprint: its presence makes a folder ours
LEASE = "_lease.json"
LEASE_LOCK = "_lease.lock"
# Names this job may create at the top of an output before RUN_INFO exists.
BOOKKEEPING = {RUN_INFO, LEASE, LEASE_LOCK, REJECTED_DIR, COMMITS_DIR, MANIFEST_DIR}


class OutputLayout:
    """Names of the output's files, and the few listings and small writes the driver does."""

    def __init__(self, uri: str, storage_options: dict[str, Any]):
        self.fs, self.root = open_fs(uri, storage_options)
        self.uri = full_uri(self.fs, self.root, like=uri)

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

    # small reads and writes ------------------------------------------------
    def write_json(self, path: str, payload: dict[str, Any]) -> None:
        text = json.dumps(payload, ensure_ascii=False, indent=1, default=str)
        with_retries(lambda: write_atomically(self.fs, path, text.encode("utf-8")), f"writing {path}")

    def read_json(self, path: str) -> dict[str, Any] | None:
        try:
            with self.fs.open(path, "r") as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None

    def list_names(self, *subdir: str) -> list[str]:
        """File names directly under root/subdir (one listing; empty if it does not exist)."""
        path = join(self.root, *subdir)
        try:
            self.fs.invalidate_cache(path)
            return [entry.rstrip("/").rsplit("/", 1)[-1] for entry in self.fs.ls(path, detail=False)]
        except (FileNotFoundError, NotADirectoryError):  # a parent is a file: nothing is there either
            return []

    def committed_units(self) -> set[str]:
        """Units whose marker exists (a marker's hidden temporary is not one)."""
        return {name[: -len(".json")] for name in self.list_names(COMMITS_DIR)
                if name.endswith(".json") and UNIT_PATTERN.match(name[: -len(".json")])}

    def read_markers(self, threads: int = 32) -> list[dict[str, Any]]:
        """Every commit marker's content (one small read each, in parallel: object stores
        answer many small reads at once, not quickly one after another)."""
        from concurrent.futures import ThreadPoolExecutor

        paths = [self.commit_marker(unit) for unit in sorted(self.committed_units())]
        with ThreadPoolExecutor(max_workers=threads) as pool:
            found = pool.map(lambda path: with_retries(lambda: self.read_json(path), f"reading {path}"), paths)
            return [marker for marker in found if marker is not None]

    def manifests(self) -> list[dict[str, Any]]:
        """The run history: every run's manifest, oldest first."""
        names = sorted(n for n in self.list_names(MANIFEST_DIR) if n.startswith("run-") and n.endswith(".json"))
        runs = [self.read_json(join(self.root, MANIFEST_DIR, name)) for name in names]
        return sorted((run for run in runs if run), key=lambda run: run.get("finished_at") or "")

    def ensure_local_dirs(self) -> None:
        """Local disks need folders before files; object stores have none (and s3fs would
        create a missing bucket here, hiding a typo in output.uri)."""
        if is_local(self.fs):
            for sub in ("", REJECTED_DIR, COMMITS_DIR, MANIFEST_DIR):
                self.fs.makedirs(join(self.root, sub) if sub else self.root, exist_ok=True)
