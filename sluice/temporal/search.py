"""Search attributes Sluice sets, so the Web UI can filter by tenant, connector and state."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

TENANT = SearchAttributeKey.for_keyword("SluiceTenant")
CC_PAIR = SearchAttributeKey.for_int("SluiceCcPair")
SOURCE = SearchAttributeKey.for_keyword("SluiceSource")
STATE = SearchAttributeKey.for_keyword("SluiceState")

ALL = (TENANT, CC_PAIR, SOURCE, STATE)
