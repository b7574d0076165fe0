"""Temporal plumbing shared by clients, workers and workflows (no business logic)."""
