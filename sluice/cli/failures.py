"""What went wrong, in one line a person can act on: every CLI command's errors end here.

Commands never print tracebacks: Sluice's own errors carry their message; the rest
(Temporal RPC errors, an unreachable server, a tenant that was never migrated) are
recognised by type and said plainly, naming what was not found or not reachable.
"""

from __future__ import annotations

import re
import sys

current_tenant: str | None = None
"""The tenant the command works on (set by :func:`sluice.cli.common.tenant`): named when
its tables are missing, since PostgreSQL's message may name only the table."""


def describe(error: BaseException) -> str | None:
    """One line for ``error``, or None if it is not one the CLI knows how to explain."""
    from sluice.errors import SluiceError

    if isinstance(error, SluiceError):
        return str(error)
    for explain in (_temporal, _database, _plain):
        line = explain(error)
        if line is not None:
            return line
    return None


def _temporal(error: BaseException) -> str | None:
    if "temporalio" not in sys.modules:
        return None  # a command that never loaded the Temporal SDK got no error from it
    from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
    from temporalio.service import RPCError, RPCStatusCode

    if isinstance(error, RPCError):
        if error.status == RPCStatusCode.NOT_FOUND:
            return (
                "no such connector workflow (it was deleted, or its workflow is gone: "
                "`sluice connector index-now ID` starts it again)"
            )
        if error.status == RPCStatusCode.UNAVAILABLE:
            return f"Temporal is unreachable: {error.message}"
        # The CLI cancels no call itself: CANCELLED is its rpc_timeout expiring (the message
        # is "Timeout expired" or, as often, "h2 protocol error: http2 error").
        timed_out = error.status == RPCStatusCode.CANCELLED
        if error.status == RPCStatusCode.DEADLINE_EXCEEDED or timed_out:
            return "the workflow did not answer in time: is a worker running? (sluice status)"
        status = error.status.name if error.status else "error"
        return f"Temporal refused the request ({status}): {error.message}"
    from temporalio.client import WorkflowFailureError

    if isinstance(error, WorkflowFailureError):
        causes = _causes(error)
        innermost = getattr(causes[-1], "message", None) or str(causes[-1])
        return f"the workflow failed: {innermost}"
    if isinstance(error, WorkflowQueryFailedError | WorkflowUpdateFailedError):
        return f"the connector workflow refused: {error}"
    if isinstance(error, RuntimeError) and "Failed client connect" in str(error):
        return f"Temporal is unreachable: {str(error).splitlines()[0]}"
    return None


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _database(error: BaseException) -> str | None:
    """A tenant that was never migrated: its schema or tables are missing."""
    for cause in _causes(error):
        name = type(cause).__name__
        if name in ("UndefinedTableError", "InvalidSchemaNameError"):
            # 'relation "acme.chunk"' or 'schema "acme"' name the tenant; 'relation "chunk"'
            # (a query through search_path) does not
            found = re.search(r'relation "([^".]+)\.|schema "([^"]+)"', str(cause))
            named = (found.group(1) or found.group(2)) if found else None
            schema = named or current_tenant or "that tenant"
            return (
                f"tenant {schema!r} does not exist in this database "
                f"(create it with `sluice migrate --tenant {schema}`)"
            )
    return None


def _plain(error: BaseException) -> str | None:
    if isinstance(error, TimeoutError):  # before OSError: TimeoutError is one
        return f"timed out: {error}" if str(error) else "timed out"
    if isinstance(error, ConnectionRefusedError | OSError):
        return f"a service is unreachable: {error}"
    return None
