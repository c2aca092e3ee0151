"""The commit protocol, and nothing else: where an output's files live, the typed records
written there (commit markers, run info, manifests, the lease, the latest pointer), how an
output is made ready for a run, how units are committed, and one writer at a time."""
