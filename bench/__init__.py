"""Benchmarks: run them as modules, e.g. ``uv run python -m bench.indexing``."""
