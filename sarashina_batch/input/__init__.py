"""The input side: which Parquet files there are (with identities), how they are read, and
how they are cut into work units. Knows nothing of the output."""
