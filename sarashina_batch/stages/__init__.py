"""Pipeline stages: small callables over pyarrow Tables, wired together in pipeline.py."""
