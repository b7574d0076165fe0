"""Tenant IDs and their Postgres schemas: one schema per tenant, as in the seed platform.

A tenant ID is checked against ``^[a-z0-9_]{1,63}$`` *before* it gets anywhere near
SQL. The tenant's schema is named exactly like the tenant (63 characters is also
Postgres' identifier limit, so no prefix would fit); the few names Postgres keeps
for itself are refused so that no tenant can land in a system schema.
"""

from __future__ import annotations

import re

from sluice.errors import InvalidTenantError

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9_]{1,63}$")
DEFAULT_TENANT = "default"
RESERVED_SCHEMAS = frozenset({"public", "information_schema"})


def validate_tenant_id(tenant_id: object) -> str:
    """Return ``tenant_id`` if valid, else raise InvalidTenantError naming the rule."""
    if not isinstance(tenant_id, str) or not TENANT_ID_PATTERN.fullmatch(tenant_id):
        raise InvalidTenantError(
            f"invalid tenant_id {tenant_id!r}: expected 1-63 characters of a-z, 0-9 or _"
        )
    if tenant_id in RESERVED_SCHEMAS or tenant_id.startswith("pg_"):
        raise InvalidTenantError(
            f"invalid tenant_id {tenant_id!r}: reserved by PostgreSQL, choose another name"
        )
    return tenant_id


def schema_for(tenant_id: str) -> str:
    """The Postgres schema that holds ``tenant_id``'s tables (validated, safe to quote)."""
    return validate_tenant_id(tenant_id)


def quoted_schema(tenant_id: str) -> str:
    """The schema as a quoted SQL identifier; safe because the ID was validated."""
    return f'"{schema_for(tenant_id)}"'
