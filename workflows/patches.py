"""Every ``workflow.patched`` ID in use, with why and when it may be removed.

Connector workflows live for months and sit for hours in one code path, so any
change to the commands a running workflow issues (an activity, a timer, a search
attribute upsert, their order) is guarded: new runs take the new path, runs
recorded before the change replay the old one. ``tests/test_replay.py`` replays
the committed histories in ``tests/histories/`` and fails on an unguarded change.

Retiring a patch (two deploys): first replace ``patched(ID)`` with
``deprecate_patch(ID)`` and keep only the new path, once no open workflow can be
on the old one (every connector workflow continues-as-new at least every refresh
interval, so after the longest interval plus the history retention); then remove
the call, and re-record the histories that predate it.
"""

from __future__ import annotations

BOOKKEEPING_STUCK_ALERT = "bookkeeping-stuck-alert"
"""2026-12-01: a timer beside each bookkeeping call marks the connector ``stuck``."""

RUNNING_STATE_DURING_ATTEMPT = "running-state-during-attempt"
"""2026-12-01: SluiceState is set to ``running`` when an attempt runs (it stayed
``paused`` through an attempt started by a resume)."""

PRUNING_BETWEEN_ATTEMPTS = "pruning-between-attempts"
"""2026-12-02: a ``prune`` signal runs the pruning child workflow before the next attempt."""

PERMISSION_SYNC_BETWEEN_ATTEMPTS = "permission-sync-between-attempts"
"""2026-12-03: a ``sync_permissions`` signal runs the permission-sync child workflow
(groups, ACLs, metadata sync) before the next attempt."""

SKIP_UNCHANGED_BEFORE_STAGING = "skip-unchanged-before-staging"
"""2026-12-02: fetches ask the activity to drop documents whose ``updated_at`` and ACL
are unchanged before staging them (no new command; the request gains a flag)."""
