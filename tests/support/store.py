"""A folder on local disk or on the loopback S3 server, and the small corpora the output
tests write into it."""

import io
import time

import fsspec
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from tests.support import MAX_LEN, job_config


class Store:
    """A folder on local disk or on the S3 server, with the few operations the tests need."""

    def __init__(self, kind, tmp_path, s3=None, bucket=None):
        self.kind = kind
        if kind == "local":
            self.fs, self.base, self.options = fsspec.filesystem("file"), str(tmp_path), {}
        else:
            import s3fs

            self.fs, self.base, self.options = s3fs.S3FileSystem(**s3.storage_options()), bucket, s3.storage_options()

    def uri(self, path: str) -> str:
        return f"{self.base}/{path}" if self.kind == "local" else f"s3://{self.base}/{path}"

    def key(self, path: str) -> str:
        return f"{self.base}/{path}"

    def put_table(self, path: str, table: pa.Table, row_group_size: int) -> None:
        buffer = io.BytesIO()
        pq.write_table(table, buffer, row_group_size=row_group_size)
        self.fs.makedirs(self.key(path).rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(self.key(path), buffer.getvalue())
        time.sleep(0.01)  # a distinct modification time for the next rewrite on local disk

    def files(self, path: str) -> dict[str, bytes]:
        """Every file under path but hidden temporaries, which a running job renames at will."""
        self.fs.invalidate_cache()
        root, found = self.key(path), {}
        for key in self.fs.find(root):
            if not key.rsplit("/", 1)[-1].startswith("."):
                found[key[len(root) + 1 :]] = self.fs.cat_file(key)
        return found

    def dataset(self, path: str) -> pa.Table:
        self.fs.invalidate_cache()
        return pads.dataset(self.key(path), filesystem=self.fs, format="parquet").to_table()

    def config(self, tiny_model, **sections):
        sections.setdefault("input", {}).update(storage_options=self.options, id_column="doc_id", rows_per_unit=10)
        sections.setdefault("output", {}).update(storage_options=self.options)
        sections.setdefault("model", {}).update(max_seq_length=MAX_LEN)
        return job_config(self.uri("corpus"), self.uri("out"), tiny_model, **sections)


def shard(name: str, rows: int, salt: str = "") -> pa.Table:
    texts = [f"{name}{salt}の文書{i}です。" + "東京の天気は晴れ。" * (i % 4) for i in range(rows)]
    return pa.table({"doc_id": [f"{name}-{i:03d}" for i in range(rows)], "text": texts})
