"""Where everything lives under output.uri. Readers of the dataset see only part-*.parquet;
every '_'-prefixed path is bookkeeping they skip."""

from __future__ import annotations

import json
from typing import Any

from .storage import full_uri, is_local, join, open_fs
from .storage_errors import with_retries

REJECTED_DIR = "_rejected"
COMMITS_DIR = "_commits"
MANIFEST_DIR = "_manifest"
RUN_INFO = "_sarashina_batch.json"


class OutputLayout:
    """Names of the output's files, and the few listings and small writes the driver does."""

    def __init__(self, uri: str, storage_options: dict[str, Any]):
        self.fs, self.root = open_fs(uri, storage_options)
        self.uri = full_uri(self.fs, self.root)

    # names -----------------------------------------------------------------
    @staticmethod
    def part_name(unit_id: str, first_row: int) -> str:
        return f"part-{unit_id}-r{first_row:010d}.parquet"

    def data_part(self, unit_id: str, first_row: int) -> str:
        return join(self.root, self.part_name(unit_id, first_row))

    def rejected_part(self, unit_id: str, first_row: int) -> str:
        return join(self.root, REJECTED_DIR, self.part_name(unit_id, first_row))

    def commit_marker(self, unit_id: str) -> str:
        return join(self.root, COMMITS_DIR, f"{unit_id}.json")

    def manifest(self, run_id: str) -> str:
        return join(self.root, MANIFEST_DIR, f"run-{run_id}.json")

    # small reads and writes ------------------------------------------------
    def write_json(self, path: str, payload: dict[str, Any]) -> None:
        text = json.dumps(payload, ensure_ascii=False, indent=1, default=str)
        with_retries(lambda: self.fs.pipe_file(path, text.encode("utf-8")), f"writing {path}")

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
            return [entry.rsplit("/", 1)[-1] for entry in self.fs.ls(path, detail=False)]
        except FileNotFoundError:
            return []

    def committed_units(self) -> set[str]:
        return {name[: -len(".json")] for name in self.list_names(COMMITS_DIR) if name.endswith(".json")}

    def ensure_local_dirs(self) -> None:
        """Local disks need folders before files; object stores have none (and s3fs would
        create a missing bucket here, hiding a typo in output.uri)."""
        if is_local(self.fs):
            for sub in ("", REJECTED_DIR, COMMITS_DIR, MANIFEST_DIR):
                self.fs.makedirs(join(self.root, sub) if sub else self.root, exist_ok=True)

    def is_empty(self) -> bool:
        return not self.fs.exists(self.root) or not self.list_names()
