"""Search attributes Sluice sets, so the Web UI can filter by tenant, connector, collection,
document, index type and state."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

TENANT = SearchAttributeKey.for_keyword("SluiceTenant")
CC_PAIR = SearchAttributeKey.for_int("SluiceCcPair")
SOURCE = SearchAttributeKey.for_keyword("SluiceSource")
STATE = SearchAttributeKey.for_keyword("SluiceState")
COLLECTION = SearchAttributeKey.for_keyword("SluiceCollection")
DOCUMENT = SearchAttributeKey.for_keyword("SluiceDocument")
INDEX_TYPES = SearchAttributeKey.for_keyword_list("SluiceIndexType")
"""Seed 002: the index types a document workflow is building or deleting this round."""

ALL = (TENANT, CC_PAIR, SOURCE, STATE, COLLECTION, DOCUMENT, INDEX_TYPES)
