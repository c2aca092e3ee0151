"""Object stores and local disks through fsspec: opening, atomic writes, deletes, and the
retry and wording of storage failures. Knows nothing of inputs, outputs or runs."""
