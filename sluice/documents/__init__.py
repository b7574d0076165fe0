"""Seed 002's document indexes: collections of documents, each indexed as vector,
fulltext, graph and summary, with a state row per document and index type.

Domain code only (no workflow code): rows and SQL (``store.py``), parsing, the graph
extractor, the summarizer, the per-type builds (``builds.py``), collection GC and
evaluations. The workflow is ``workflows/document_index.py``; the Python/CLI entry point
is :mod:`sluice.scheduler`.
"""
