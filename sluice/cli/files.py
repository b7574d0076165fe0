"""``sluice files upload|list|move|delete|search`` and ``sluice files project add-member``.

Uploads are indexed for their owner (and their project's members) only: ``files search``
searches as a user, through the index's ACL filter.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sluice.cli.common import TenantOption, fail, run, tenant

app = typer.Typer(help="Files users upload: indexed for their owner only.", no_args_is_help=True)
project_app = typer.Typer(help="Projects: who may read a project's files.", no_args_is_help=True)
app.add_typer(project_app, name="project")


@app.command("upload")
def upload(
    path: Path = typer.Argument(..., help="The file to upload."),
    user: str = typer.Option(..., "--user", "-u", help="Its owner."),
    project: str | None = typer.Option(None, "--project", "-p", help="Its project."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until it is searchable."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Store a file and index it for its owner (and project)."""
    t = tenant(tenant_id)

    async def go() -> int:
        import time

        from sluice.temporal.client import connect
        from sluice.userfiles import ops

        client = await connect()
        started = time.monotonic()
        info = await ops.upload(client, t, path, user, project)
        typer.echo(f"file {info.id}: {info.name} ({info.size_bytes} bytes) uploaded")
        if wait and info.status == "processing":
            info = await ops.wait_processed(client, t, info.id)
        typer.echo(f"file {info.id}: {_status(info)} ({time.monotonic() - started:.2f} s)")
        return 1 if info.status == "failed" else 0

    raise typer.Exit(run(go()))


def _status(info: object) -> str:
    status = str(getattr(info, "status", ""))
    if status == "failed":
        return f"failed: {getattr(info, 'error', '')}"
    if status == "ready":
        return f"ready, {getattr(info, 'chunk_count', 0)} chunks"
    return status


@app.command("list")
def list_(
    user: str | None = typer.Option(None, "--user", "-u", help="Only this owner's files."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Uploaded files and their status (processing, ready, failed with the reason)."""
    from sluice.userfiles import catalog

    files = run(catalog.list_files(tenant(tenant_id), user))
    typer.echo(f"{'id':>5}  {'owner':<12} {'project':<12} {'size':>9}  {'name':<24} status")
    for f in files:
        typer.echo(
            f"{f.id:>5}  {f.owner:<12} {f.project or '-':<12} {f.size_bytes:>9}  "
            f"{f.name:<24} {_status(f)}"
        )


@app.command("move")
def move(
    file_id: int = typer.Argument(...),
    project: str | None = typer.Option(None, "--project", "-p", help="The new project."),
    no_project: bool = typer.Option(False, "--no-project", help="Take it out of any project."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Re-scope a file to another project (its vectors are kept, not re-embedded)."""
    if (project is None) == (not no_project):
        raise fail("give exactly one of --project P or --no-project")
    t = tenant(tenant_id)

    async def go() -> None:
        from sluice.temporal.client import connect
        from sluice.userfiles import ops

        outcome = await ops.move(await connect(), t, file_id, project)
        typer.echo(f"file {file_id}: {outcome.detail}")

    run(go())


@app.command("delete")
def delete(file_id: int = typer.Argument(...), tenant_id: str | None = TenantOption) -> None:
    """Delete a file: its row, its bytes, its document, chunks and vectors."""
    t = tenant(tenant_id)

    async def go() -> None:
        from sluice.temporal.client import connect
        from sluice.userfiles import ops

        outcome = await ops.delete(await connect(), t, file_id)
        typer.echo(f"file {file_id}: {outcome.status}")

    run(go())


@app.command("search")
def search(
    query: str = typer.Argument(...),
    user: str = typer.Option(..., "--user", "-u", help="Search as this user."),
    k: int = typer.Option(10, "--k", "-k", min=1, max=100),
    tenant_id: str | None = TenantOption,
) -> None:
    """Search the uploads a user may read: their own and their projects'."""
    from sluice.userfiles import catalog

    for hit in run(catalog.search_as(tenant(tenant_id), user, query, k)):
        typer.echo(f"{hit.rank:>3}. {hit.title}  [{hit.document_id}]  {hit.snippet[:100]}")


@project_app.command("add-member")
def add_member(
    project: str = typer.Argument(...),
    user: str = typer.Argument(...),
    tenant_id: str | None = TenantOption,
) -> None:
    """Let a user read a project's files."""
    from sluice.userfiles import catalog

    added = run(catalog.add_member(tenant(tenant_id), project, user))
    typer.echo(f"{user} {'added to' if added else 'is already in'} project {project}")


@project_app.command("remove-member")
def remove_member(
    project: str = typer.Argument(...),
    user: str = typer.Argument(...),
    tenant_id: str | None = TenantOption,
) -> None:
    from sluice.userfiles import catalog

    removed = run(catalog.remove_member(tenant(tenant_id), project, user))
    typer.echo(f"{user} {'removed from' if removed else 'was not in'} project {project}")
