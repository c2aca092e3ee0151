"""The stages of the Ray Data graph: small callables over pyarrow Tables, wired together in
run/graph.py. A stage knows nothing of the run around it: what it needs is handed in."""
