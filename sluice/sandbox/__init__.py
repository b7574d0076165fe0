"""Sandbox runs: a command in a fresh directory with time, memory and output limits."""
