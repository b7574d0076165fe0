"""Indexing: split documents into chunks, embed them and store them for search."""
