"""What pyarrow decodes: a count of the rows every ParquetFile.iter_batches call hands out (the
job's row-range reads all go through it), and files of one large row group to count them on."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


class DecodedRows:
    """Rows decoded of files with a `text` column (the input's; an output part has none), in all
    and per row group, since install(); `marks` notes the total when a test says (mark())."""

    def __init__(self) -> None:
        self.rows = 0
        self.per_group: Counter[int] = Counter()
        self.marks: list[int] = []

    def install(self, monkeypatch) -> DecodedRows:
        original = pq.ParquetFile.iter_batches
        counter = self

        def iter_batches(parquet, *args, row_groups=None, **kwargs):
            if "text" not in parquet.schema_arrow.names:
                yield from original(parquet, *args, row_groups=row_groups, **kwargs)
                return
            for batch in original(parquet, *args, row_groups=row_groups, **kwargs):
                counter.rows += batch.num_rows
                for group in row_groups or [-1]:  # the job reads one group per call
                    counter.per_group[group] += batch.num_rows
                yield batch

        monkeypatch.setattr(pq.ParquetFile, "iter_batches", iter_batches)
        return self

    def mark(self) -> None:
        self.marks.append(self.rows)


def japanese_texts(rows: int, chars: int, seed: int = 0) -> pa.Array:
    """Texts of 7 digits (the row) and `chars` characters drawn from kana and 3,000 kanji:
    hardly compressible, as real Japanese text is not to Parquet's codecs."""
    rng = np.random.default_rng(seed)
    alphabet = np.array(
        [*range(0x3041, 0x3097), *range(0x30A1, 0x30FB), *range(0x4E00, 0x4E00 + 3000)], dtype=np.uint32
    )
    digits = (np.arange(rows)[:, None] // 10 ** np.arange(6, -1, -1) % 10 + ord("0")).astype(np.uint32)
    codes = np.concatenate([digits, alphabet[rng.integers(0, len(alphabet), size=(rows, chars))]], axis=1)
    return pa.array(np.ascontiguousarray(codes).view(f"<U{chars + 7}").ravel())


def write_one_group_file(path: Path, rows: int, chars: int = 20, row_group_size: int | None = None) -> Path:
    """A file of doc_id and text, written as one row group (or groups of row_group_size)."""
    table = pa.table({"doc_id": [f"d{i:07d}" for i in range(rows)], "text": japanese_texts(rows, chars)})
    pq.write_table(table, path, row_group_size=row_group_size or rows)
    return path


class BytesRead:
    """A filesystem whose files count the bytes read from them."""

    def __init__(self, fs):
        self.fs, self.bytes = fs, 0

    def open(self, path, mode="rb"):
        return _CountingFile(self.fs.open(path, mode), self)


class _CountingFile:
    def __init__(self, handle, counter):
        self._handle, self._counter = handle, counter

    def read(self, size=-1):
        data = self._handle.read(size)
        self._counter.bytes += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()
