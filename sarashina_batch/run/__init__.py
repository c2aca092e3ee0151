"""A run: its context, the Ray Data graph, the driver that runs it under the output's
lease, the Ray cluster it uses, and what it reports (progress, metrics, provenance)."""
