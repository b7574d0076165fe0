"""How long a Postgres connection may take, and how it names itself: one place for the
pooled engine (``sluice.db.engine``) and the light CLI path (``sluice.db.raw``)."""

CONNECT_TIMEOUT_SECONDS = 10
"""A Postgres that is down refuses at once; one that is frozen would hang forever."""

COMMAND_TIMEOUT_SECONDS = 60
"""No statement Sluice runs takes this long (a COPY is 1,000 rows); a frozen server fails
instead of hanging, so the activity's retry (with a fresh connection) takes over. A stuck
query costs up to twice this: the rollback's cancel request also waits for the server
(measured in tests/test_pgfaults.py). A migration that builds a large index needs its
own, longer timeout."""

APPLICATION_NAME = "sluice"
