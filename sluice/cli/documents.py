"""``sluice document show|set`` and ``sluice document-set create|add|remove|list|delete``.

Metadata changes take effect in search at once for ``hidden`` and ``boost`` (search reads
the document row) and, for ACLs and sets, once the metadata sync that each change
starts has run (seconds; ``--wait`` waits for it).
"""

from __future__ import annotations

import json

import typer

from sluice.cli.common import TenantOption, fail, run, tenant

document_app = typer.Typer(
    help="One document's metadata: hidden, boost, ACL.", no_args_is_help=True
)
set_app = typer.Typer(
    help="Document sets: named sets of connectors (search --collection).", no_args_is_help=True
)


@document_app.command("show")
def show(document_id: str = typer.Argument(...), tenant_id: str | None = TenantOption) -> None:
    """A document's metadata and whether the index has taken its last change."""
    from dataclasses import asdict

    from sluice import metadata_ops

    found = run(metadata_ops.document(tenant(tenant_id), document_id))
    typer.echo(json.dumps({**asdict(found), "stale": found.stale}, indent=2))


@document_app.command("set")
def set_(
    document_id: str = typer.Argument(...),
    hidden: bool | None = typer.Option(None, "--hidden/--visible", help="Hide from search."),
    boost: float | None = typer.Option(None, "--boost", help="Rank factor: score x (1 + boost)."),
    acl: list[str] | None = typer.Option(
        None, "--acl", help="Replace the ACL (repeat: --acl user:ann --acl public)."
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait until the index has taken it."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Change a document's metadata; a metadata sync starts at once."""
    if hidden is None and boost is None and not acl:
        raise fail("nothing to change: give --hidden/--visible, --boost or --acl")
    t = tenant(tenant_id)

    async def go() -> None:
        from sluice import metadata_ops
        from sluice.temporal.client import connect

        client = await connect()
        changed = await metadata_ops.set_document(
            client, t, document_id, hidden=hidden, boost=boost, acl=acl or None
        )
        typer.echo(
            f"{document_id}: hidden={changed.hidden} boost={changed.boost:g} "
            f"acl={','.join(changed.acl)} (version {changed.metadata_version})"
        )
        if wait:
            synced = await metadata_ops.sync_now(client, t)
            typer.echo(f"metadata sync done ({synced} documents)")

    run(go())


@set_app.command("create")
def create(
    name: str = typer.Argument(...),
    description: str | None = typer.Option(None, "--description"),
    tenant_id: str | None = TenantOption,
) -> None:
    from sluice import metadata_ops

    created = run(metadata_ops.create_set(tenant(tenant_id), name, description))
    typer.echo(f"document set {name} " + ("created" if created else "exists already"))


@set_app.command("add")
def add(
    name: str = typer.Argument(...),
    connector: int = typer.Option(..., "--connector", help="cc-pair ID whose documents join."),
    wait: bool = typer.Option(False, "--wait", help="Wait until search sees the change."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Put a connector's documents in the set."""
    _membership(name, connector, add=True, wait=wait, tenant_id=tenant_id)


@set_app.command("remove")
def remove(
    name: str = typer.Argument(...),
    connector: int = typer.Option(..., "--connector"),
    wait: bool = typer.Option(False, "--wait"),
    tenant_id: str | None = TenantOption,
) -> None:
    """Take a connector's documents out of the set."""
    _membership(name, connector, add=False, wait=wait, tenant_id=tenant_id)


def _membership(name: str, cc: int, *, add: bool, wait: bool, tenant_id: str | None) -> None:
    t = tenant(tenant_id)

    async def go() -> None:
        from sluice import metadata_ops
        from sluice.temporal.client import connect

        client = await connect()
        change = metadata_ops.add_to_set if add else metadata_ops.remove_from_set
        stale = await change(client, t, name, cc)
        typer.echo(
            f"cc-pair {cc} {'added to' if add else 'removed from'} {name}: "
            f"{stale} documents to sync"
        )
        if wait:
            synced = await metadata_ops.sync_now(client, t)
            typer.echo(f"metadata sync done ({synced} documents)")

    run(go())


@set_app.command("list")
def list_(tenant_id: str | None = TenantOption) -> None:
    from sluice import metadata_ops

    for s in run(metadata_ops.list_sets(tenant(tenant_id))):
        pairs = ",".join(str(c) for c in s.cc_pairs) or "-"
        typer.echo(f"{s.name}\tconnectors {pairs}\t{s.documents} documents\t{s.description or ''}")


@set_app.command("delete")
def delete(name: str = typer.Argument(...), tenant_id: str | None = TenantOption) -> None:
    t = tenant(tenant_id)

    async def go() -> int:
        from sluice import metadata_ops
        from sluice.temporal.client import connect

        return await metadata_ops.delete_set(await connect(), t, name)

    stale = run(go())
    typer.echo(f"document set {name} deleted; {stale} documents leave it")
