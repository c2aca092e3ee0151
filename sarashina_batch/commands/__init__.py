"""The command-line verbs, one module each (embed, plan, verify, inspect, duplicates,
nightly), with the exit codes and the error wrapper they share (exits)."""
