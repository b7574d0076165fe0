"""``sluice sandbox run [--timeout S] [--memory MB] [--output-cap BYTES] -- CMD ...``.

The command runs on a heavy worker (queue ``sandbox``) in a fresh temporary directory,
in its own process group, under a wall-clock, memory and output limit; Ctrl-C cancels
the run, which kills the whole group. Exits with the command's exit code (124 when it
ran out of time, like ``timeout``).
"""

from __future__ import annotations

import typer

from sluice.cli.common import TenantOption, run, tenant

app = typer.Typer(help="Run commands in a sandbox with limits.", no_args_is_help=True)


@app.command("run")
def run_(
    command: list[str] = typer.Argument(..., help="The command and its arguments (after --)."),
    timeout: float = typer.Option(60.0, "--timeout", min=0.1, help="Wall-clock limit (s)."),
    memory: int = typer.Option(512, "--memory", min=16, help="Address-space limit (MB)."),
    output_cap: int = typer.Option(
        64 * 1024, "--output-cap", min=1, help="Output kept: the last BYTES."
    ),
    tenant_id: str | None = TenantOption,
) -> None:
    """Run CMD in a fresh directory; print its output tail, exit code and files."""
    t = tenant(tenant_id)

    async def go() -> int:
        from sluice.sandbox import ops
        from sluice.sandbox.models import RunStatus, SandboxRequest
        from sluice.temporal.client import connect

        request = SandboxRequest(
            tenant_id=t,
            run_id=ops.new_run_id(),
            command=command,
            timeout_seconds=timeout,
            memory_mb=memory,
            output_cap_bytes=output_cap,
        )
        result = await ops.run(await connect(), request)
        if result.output_tail:
            typer.echo(result.output_tail, nl=not result.output_tail.endswith("\n"))
        cut = (
            f", output cut to its last {len(result.output_tail)} chars" if result.truncated else ""
        )
        typer.secho(
            f"sandbox run {result.run_id}: {result.status.value}"
            + (f" ({result.detail})" if result.detail else "")
            + f", {result.seconds:.2f} s{cut}",
            err=True,
            fg=typer.colors.GREEN if result.status is RunStatus.OK else typer.colors.RED,
        )
        for f in result.files:
            typer.echo(f"  produced {f.path} ({f.size} bytes)", err=True)
        if result.status is RunStatus.TIMED_OUT:
            return 124
        return (
            result.exit_code
            if result.exit_code and result.exit_code > 0
            else (0 if result.status is RunStatus.OK else 1)
        )

    raise typer.Exit(run(go()))
