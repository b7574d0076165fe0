"""Postgres: what the product knows (connectors, documents, chunks, attempts)."""
