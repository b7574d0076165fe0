"""The graph index: entities and relations of a document, merged per collection.

The extractor is pluggable (:class:`GraphExtractor`); the offline default,
:class:`CooccurrenceExtractor`, does real if simple work: an entity is a capitalised
phrase ("Temporal Web UI", "PostgreSQL") or a code identifier (``snake_case``,
``camelCase``, ``CamelCase``, anything in backticks), and two entities are related when
they occur in the same sentence (the edge's weight counts such sentences).

Storage: ``graph_entity`` is shared by a collection's documents, ``graph_mention`` and
``graph_edge`` are per document. Writes for one collection are serialised by a
transaction-level advisory lock, so two documents adding the same entity at once never
lose an edge, and the orphan sweep (entities no document mentions any more) cannot race
a concurrent insert.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from sluice.documents.text import sentences

MAX_ENTITIES = 500
MAX_EDGES = 5_000

_CAPITALISED = re.compile(r"\b[A-Z][\w+#-]*(?:[ \t]+(?:of[ \t]+)?[A-Z][\w+#-]*)*")
_IDENTIFIER = re.compile(
    r"`([^`\s]{2,60})`"  # anything in backticks
    r"|\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b"  # snake_case
    r"|\b([a-z]+[A-Z][A-Za-z0-9]*)\b"  # camelCase
)
_STOP = frozenset(
    "A An And As At But By For From He How I If In Is It Its No Not Of On Or She So That The "
    "Then There These They This Those To We What When Where Which While Who Why With You "
    "Each Every Some All Any One Also Here After Before Only Both Our Your Their".split()
)


@dataclass
class Graph:
    labels: dict[str, str] = field(default_factory=dict)  # key -> label as first seen
    mentions: Counter[str] = field(default_factory=Counter)
    edges: Counter[tuple[str, str]] = field(default_factory=Counter)


class GraphExtractor(Protocol):
    name: str

    def extract(self, text: str) -> Graph: ...


def _entities(sentence: str) -> list[str]:
    found: list[str] = []
    for match in _CAPITALISED.finditer(sentence):
        words = match.group(0).split()
        while words and words[0] in _STOP:  # "The Temporal server" -> "Temporal"
            words.pop(0)
        phrase = " ".join(words)
        if len(phrase) >= 2 and (len(words) > 1 or match.start() > 0 or phrase.isupper()):
            found.append(phrase)
    for match in _IDENTIFIER.finditer(sentence):
        found.append(next(g for g in match.groups() if g))
    return found


def entity_key(label: str) -> str:
    return " ".join(label.lower().split())


class CooccurrenceExtractor:
    """Capitalised phrases and identifiers; related when in one sentence."""

    name = "cooccurrence"

    def extract(self, text: str) -> Graph:
        graph = Graph()
        for sentence in sentences(text):
            keys: set[str] = set()
            for label in _entities(sentence):
                key = entity_key(label)
                if key not in graph.labels and len(graph.labels) >= MAX_ENTITIES:
                    continue
                graph.labels.setdefault(key, label)
                graph.mentions[key] += 1
                keys.add(key)
            for a, b in itertools.combinations(sorted(keys), 2):
                if (a, b) in graph.edges or len(graph.edges) < MAX_EDGES:
                    graph.edges[(a, b)] += 1
        return graph


EXTRACTORS: dict[str, GraphExtractor] = {CooccurrenceExtractor.name: CooccurrenceExtractor()}


def get_extractor(name: str = CooccurrenceExtractor.name) -> GraphExtractor:
    return EXTRACTORS[name]


async def _lock_collection(raw: Any, collection: str) -> None:
    await raw.execute("SELECT pg_advisory_xact_lock(hashtext('sluice-graph:' || $1))", collection)


async def write_graph(raw: Any, collection: str, document_id: str, graph: Graph) -> None:
    """Replace the document's mentions and edges (entities are merged, orphans removed)."""
    await _lock_collection(raw, collection)
    await _delete_contributions(raw, collection, document_id)
    keys = list(graph.labels)
    await raw.execute(
        "INSERT INTO graph_entity (collection, key, label) "
        "SELECT $1, unnest($2::text[]), unnest($3::text[]) ON CONFLICT DO NOTHING",
        collection,
        keys,
        [graph.labels[k] for k in keys],
    )
    await raw.execute(
        "INSERT INTO graph_mention (collection, key, document_id, mentions) "
        "SELECT $1, unnest($2::text[]), $3, unnest($4::int[])",
        collection,
        keys,
        document_id,
        [graph.mentions[k] for k in keys],
    )
    pairs = list(graph.edges)
    await raw.execute(
        "INSERT INTO graph_edge (collection, source, target, document_id, weight) "
        "SELECT $1, unnest($2::text[]), unnest($3::text[]), $4, unnest($5::int[])",
        collection,
        [a for a, _ in pairs],
        [b for _, b in pairs],
        document_id,
        [graph.edges[p] for p in pairs],
    )
    await _delete_orphans(raw, collection)


async def delete_graph(raw: Any, collection: str, document_id: str) -> None:
    await _lock_collection(raw, collection)
    await _delete_contributions(raw, collection, document_id)
    await _delete_orphans(raw, collection)


async def _delete_contributions(raw: Any, collection: str, document_id: str) -> None:
    await raw.execute("DELETE FROM graph_edge WHERE document_id = $1", document_id)
    await raw.execute("DELETE FROM graph_mention WHERE document_id = $1", document_id)


async def _delete_orphans(raw: Any, collection: str) -> None:
    await raw.execute(
        "DELETE FROM graph_entity e WHERE e.collection = $1 AND NOT EXISTS "
        "(SELECT 1 FROM graph_mention m WHERE m.collection = e.collection AND m.key = e.key)",
        collection,
    )
