"""Static checks of docker-compose.yml and the Dockerfile (no Docker needed).

What is checked: every image is pinned to a tag the project has verified, every Sluice
service runs a command the real CLI has, the two deployment profiles cover the worker
kinds, start-up ordering (migrations, databases, Temporal) is declared, no secret is
written in plain text, and the image's entrypoint is the project's `sluice` script.
"""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = ROOT / "pyproject.toml"

# Every third-party image the project runs, pinned, and checked to exist in its registry.
# Updating an image means: pick the new tag, check the registry that it is published
# (and for Temporal, that server and admin-tools are released together), then change
# docker-compose.yml / Dockerfile AND this table in the same commit.
KNOWN_TAGS: dict[str, str] = {
    "pgvector/pgvector:0.8.1-pg17": "PostgreSQL 17 + pgvector 0.8.1 (Sluice and Temporal DBs)",
    "redis:7.4.6-alpine": "Redis 7.4.6 (includes the CVE-2025-49844 fix)",
    "temporalio/server:1.29.1": "Temporal server",
    "temporalio/admin-tools:1.29.1-tctl-1.18.4-cli-1.5.0": "Temporal schema + namespace setup",
    "temporalio/ui:2.34.0": "Temporal Web UI",
}
# Base images of the Dockerfile (FROM / ARG PYTHON_IMAGE), same rule as above.
KNOWN_BASE_IMAGES: dict[str, str] = {
    "python:3.11.13-slim-bookworm": "Python 3.11 slim (Debian 12)",
}

# Plain-text values allowed as `${VAR:-default}` defaults for secrets: laptop-only dev
# credentials, documented at the top of docker-compose.yml.
DEV_DEFAULT_SECRETS = {"sluice", "temporal"}

INFRA_DEPENDENCIES = {"postgres", "redis", "temporal"}
MIGRATE_SERVICE = "sluice-migrate"
TEMPORAL_SETUP_SERVICE = "temporal-setup"
# The kinds the CLI contract names; the live WORKER_KINDS table is checked further down.
STANDARD_KINDS = {
    "primary",
    "light",
    "heavy",
    "docprocessing",
    "docfetching",
    "user_file_processing",
    "monitoring",
}
LIGHTWEIGHT_KIND = "background"

SECRET_KEY = re.compile(r"(PASSWORD|PASSWD|_PWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY)$", re.I)
URL_USERINFO = re.compile(r"://([^/\s@]+)@")
INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open() as fh:
        doc = yaml.safe_load(fh)
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict)
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Resolve compose `${VAR:-default}` syntax the way `docker compose` does."""
    env = env or {}

    def repl(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        if op in (":-", "-"):
            unset = current is None or (op == ":-" and current == "")
            return arg if unset else current  # type: ignore[return-value]
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise ValueError(f"{name} is required: {arg}")
            return current
        if op in (":+", "+"):
            return arg if current else ""
        return current or ""

    return INTERPOLATION.sub(repl, value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {k: v for k, v in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def command_argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def sluice_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services built from this repo's Dockerfile (their entrypoint is `sluice`)."""
    return {name: svc for name, svc in services.items() if "build" in svc}


def worker_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in sluice_services(services).items()
        if command_argv(svc)[:1] == ["worker"]
    }


def worker_kind(service: dict[str, Any]) -> str:
    argv = command_argv(service)
    positional = [a for a in argv[1:] if not a.startswith("-")]
    assert positional, f"`sluice worker` without a kind: {argv}"
    return positional[0]


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {name: (cond or {}).get("condition", "service_started") for name, cond in deps.items()}


def walk_strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from walk_strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_strings(value, f"{path}[{i}]")


def url_passwords(value: str) -> list[str]:
    """Passwords in `scheme://user:password@host` URLs, keeping `${...}` tokens whole."""
    tokens: list[str] = []

    def hide(match: re.Match[str]) -> str:
        tokens.append(match[0])
        return f"\x00{len(tokens) - 1}\x00"

    masked = re.sub(r"\$\{[^}]*\}", hide, value)
    found = []
    for userinfo in URL_USERINFO.findall(masked):
        if ":" in userinfo:
            password = userinfo.split(":", 1)[1]
            found.append(re.sub(r"\x00(\d+)\x00", lambda m: tokens[int(m[1])], password))
    return found


def is_interpolated_secret(value: str) -> bool:
    """`${VAR}`, `${VAR:?msg}` or `${VAR:-dev-default}` with a documented dev default."""
    match = INTERPOLATION.fullmatch(value.strip())
    if not match or not match["braced"]:
        return False
    if match["op"] in (":-", "-"):
        return match["arg"] in DEV_DEFAULT_SECRETS
    return match["op"] in (None, ":?", "?")


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text()
    text = re.sub(r"\\\n", " ", text)  # line continuations
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def dockerfile_base_images() -> set[str]:
    instructions = dockerfile_instructions()
    args = {}
    for keyword, rest in instructions:
        if keyword == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key.strip()] = value.strip().strip('"')
    stages = {rest.split()[2] for kw, rest in instructions if kw == "FROM" and " AS " in rest}
    bases = set()
    for keyword, rest in instructions:
        if keyword != "FROM":
            continue
        image = rest.split()[0]
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m[1], m[0]), image)
        if image not in stages:
            bases.add(image)
    return bases


def is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


# --------------------------------------------------------------------------- images


def test_every_service_is_pinned_or_built(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if "build" in svc:
            continue
        image = svc.get("image")
        assert image, f"{name}: neither `image` nor `build`"
        assert "$" not in image, f"{name}: image must be a literal, got {image!r}"
        assert is_pinned(image), f"{name}: image {image!r} is not pinned to a version tag"


def test_every_image_is_a_verified_tag(services: dict[str, dict[str, Any]]) -> None:
    used = {svc["image"] for svc in services.values() if "build" not in svc}
    unknown = used - KNOWN_TAGS.keys()
    assert not unknown, f"images not in KNOWN_TAGS (check the registry, then add): {unknown}"
    unused = KNOWN_TAGS.keys() - used
    assert not unused, f"KNOWN_TAGS lists images docker-compose.yml no longer uses: {unused}"


def test_header_comment_lists_every_image() -> None:
    header = COMPOSE_FILE.read_text().split("\nservices:", 1)[0]
    for image in KNOWN_TAGS:
        assert image in header, f"{image} missing from the image list atop docker-compose.yml"


def test_dockerfile_base_image_is_pinned_and_verified() -> None:
    bases = dockerfile_base_images()
    assert bases, "no FROM in Dockerfile"
    for image in bases:
        assert is_pinned(image), f"Dockerfile base {image!r} is not pinned"
        assert image.startswith("python:3.11"), f"expected a python:3.11 slim base, got {image}"
        assert "slim" in image
    assert bases <= KNOWN_BASE_IMAGES.keys(), f"unverified base images: {bases}"


# --------------------------------------------------------------------------- Sluice services


def test_sluice_services_share_one_build(services: dict[str, dict[str, Any]]) -> None:
    built = sluice_services(services)
    assert MIGRATE_SERVICE in built
    builds = {yaml.safe_dump(svc["build"], sort_keys=True) for svc in built.values()}
    images = {svc.get("image") for svc in built.values()}
    assert len(builds) == 1 and len(images) == 1, "Sluice services must come from x-sluice"
    build = next(iter(built.values()))["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (COMPOSE_FILE.parent / context / dockerfile).resolve() == DOCKERFILE
    for name, svc in built.items():
        assert "entrypoint" not in svc, f"{name}: must use the image's `sluice` entrypoint"
        assert command_argv(svc), f"{name}: no command"


def test_compose_file_uses_the_x_sluice_anchor() -> None:
    text = COMPOSE_FILE.read_text()
    assert re.search(r"^x-sluice:\s*&sluice\b", text, re.M)
    # The build is written once, in the anchor, not copied into each service.
    assert len(re.findall(r"^\s+build:", text, re.M)) == 1


def test_migrate_runs_before_every_worker(services: dict[str, dict[str, Any]]) -> None:
    migrate = services[MIGRATE_SERVICE]
    assert command_argv(migrate)[:1] == ["migrate"]
    assert "profiles" not in migrate, "migrations must run whatever profile is active"
    assert depends_on(migrate).get("postgres") == "service_healthy"
    workers = worker_services(services)
    assert workers
    for name, svc in workers.items():
        deps = depends_on(svc)
        assert deps.get(MIGRATE_SERVICE) == "service_completed_successfully", name
        for infra in INFRA_DEPENDENCIES:
            assert deps.get(infra) == "service_healthy", f"{name}: not waiting for {infra}"
        assert deps.get(TEMPORAL_SETUP_SERVICE) == "service_completed_successfully", name


def test_profiles_cover_the_worker_kinds(services: dict[str, dict[str, Any]]) -> None:
    by_profile: dict[str, list[str]] = {}
    for svc in worker_services(services).values():
        profiles = svc.get("profiles") or []
        assert len(profiles) == 1, f"each worker belongs to exactly one profile: {profiles}"
        by_profile.setdefault(profiles[0], []).append(worker_kind(svc))
    assert set(by_profile) == {"lightweight", "standard"}
    assert by_profile["lightweight"] == [LIGHTWEIGHT_KIND]
    assert sorted(by_profile["standard"]) == sorted(STANDARD_KINDS), "one service per kind"


def test_worker_mode_matches_profile(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in worker_services(services).items():
        mode = interpolate(environment(svc).get("SLUICE_MODE", ""))
        assert mode == svc["profiles"][0], f"{name}: SLUICE_MODE={mode!r}"


def test_sluice_environment_passes_settings_validation(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sluice.config import load_settings

    for name, svc in sluice_services(services).items():
        env = {k: interpolate(v) for k, v in environment(svc).items()}
        for key in ("DATABASE_URL", "REDIS_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"):
            assert env.get(key), f"{name}: {key} not set"
        with monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            settings = load_settings()
        assert settings.sqlalchemy_url.startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in settings.sqlalchemy_url, name
        assert settings.redis_url == "redis://redis:6379/0", name
        assert settings.temporal_address == "temporal:7233", name
        assert str(settings.sluice_data_dir) == "/var/lib/sluice", name


def test_worker_healthchecks_probe_healthz(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in worker_services(services).items():
        test = svc.get("healthcheck", {}).get("test")
        assert test, f"{name}: no healthcheck"
        joined = " ".join(test) if isinstance(test, list) else test
        assert "/healthz" in joined and "urllib" in joined, f"{name}: {joined}"
        assert "HEALTH_PORT" in joined or "8080" in joined
        assert environment(svc).get("HEALTH_PORT") == "8080"


def test_infra_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    def check(name: str) -> str:
        test = services[name].get("healthcheck", {}).get("test")
        assert test, f"{name}: no healthcheck"
        return " ".join(test) if isinstance(test, list) else test

    assert "pg_isready" in check("postgres")
    assert "pg_isready" in check("temporal-postgresql")
    assert "redis-cli" in check("redis") and "ping" in check("redis")
    assert "7233" in check("temporal")


# --------------------------------------------------------------------------- the real CLI


def _is_group(command: Any) -> bool:
    # Duck-typed: Typer >= 0.2x vendors click, so its groups are not `click.Group`s.
    return callable(getattr(command, "get_command", None)) and callable(
        getattr(command, "list_commands", None)
    )


def _resolve_cli(argv: list[str]) -> tuple[list[str], Any, list[str]]:
    """Walk argv through the Typer app's click groups: (path, command, leftover args)."""
    import typer

    cli_main = pytest.importorskip(
        "sluice.cli.main", reason="sluice.cli.main (the Typer app) is not written yet"
    )
    command: Any = typer.main.get_command(cli_main.app)
    assert _is_group(command), "the sluice app must have subcommands (migrate, worker, ...)"
    path: list[str] = []
    rest = list(argv)
    while _is_group(command) and rest and not rest[0].startswith("-"):
        ctx = command.context_class(command, info_name="sluice")
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, (
            f"`sluice {' '.join(argv)}`: no command {rest[0]!r} under `sluice {' '.join(path)}`"
            f" (has: {sorted(command.list_commands(ctx))})"
        )
        path.append(rest.pop(0))
        command = sub
    assert not _is_group(command), f"`sluice {' '.join(argv)}` names a group, not a command"
    return path, command, rest


def test_every_sluice_command_exists_in_the_cli(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in sluice_services(services).items():
        argv = command_argv(svc)
        path, command, rest = _resolve_cli(argv)
        assert path, f"{name}: `sluice {' '.join(argv)}` resolves to no subcommand"
        # The leftover args must parse against the command's own parameters (this also
        # applies a click.Choice on `kind`, if the CLI declares one).
        try:
            command.make_context("sluice " + " ".join(path), list(rest))
        except Exception as exc:  # click's UsageError family (vendored by Typer)
            pytest.fail(f"{name}: `sluice {' '.join(argv)}` does not parse: {exc}")


def test_every_worker_kind_exists(services: dict[str, dict[str, Any]]) -> None:
    kinds_module = pytest.importorskip(
        "workers.kinds", reason="workers.kinds (WORKER_KINDS) is not written yet"
    )
    known = set(kinds_module.WORKER_KINDS)
    used = {worker_kind(svc) for svc in worker_services(services).values()}
    assert used <= known, f"compose runs kinds the code lacks: {used - known}"
    assert known == STANDARD_KINDS | {LIGHTWEIGHT_KIND}, (
        "WORKER_KINDS changed: update the compose services and STANDARD_KINDS "
        f"(code has {sorted(known)})"
    )
    for name, svc in worker_services(services).items():
        path, _command, _rest = _resolve_cli(command_argv(svc))
        assert path[0] == "worker", name


# --------------------------------------------------------------------------- Temporal setup


def test_temporal_setup_registers_sluice_search_attributes(
    services: dict[str, dict[str, Any]],
) -> None:
    from sluice.temporal import search

    cli_type = {
        "KEYWORD": "Keyword",
        "INT": "Int",
        "TEXT": "Text",
        "DOUBLE": "Double",
        "BOOL": "Bool",
        "DATETIME": "Datetime",
        "KEYWORD_LIST": "KeywordList",
    }
    expected = {f"{key.name}:{cli_type[key.indexed_value_type.name]}" for key in search.ALL}
    setup = services[TEMPORAL_SETUP_SERVICE]
    registered = set(environment(setup)["SLUICE_SEARCH_ATTRIBUTES"].split())
    assert registered == expected
    script = "\n".join(command_argv(setup))
    assert "search-attribute create" in script
    assert environment(setup)["SLUICE_NAMESPACE"] == "${TEMPORAL_NAMESPACE:-default}"
    assert depends_on(setup).get("temporal") == "service_healthy"


def test_temporal_server_waits_for_its_schema(services: dict[str, dict[str, Any]]) -> None:
    temporal = services["temporal"]
    assert depends_on(temporal).get("temporal-schema") == "service_completed_successfully"
    env = environment(temporal)
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "temporal-postgresql"
    dynamic = env["DYNAMIC_CONFIG_FILE_PATH"]
    mounted = [v for v in temporal.get("volumes", []) if "dynamicconfig" in v]
    assert mounted, "dynamic config directory not mounted"
    host_dir = mounted[0].split(":")[0]
    assert (ROOT / host_dir / Path(dynamic).name).is_file()
    yaml.safe_load((ROOT / host_dir / Path(dynamic).name).read_text())
    schema_job = "\n".join(command_argv(services["temporal-schema"]))
    for db in ("temporal", "temporal_visibility"):
        assert f"--db {db} update-schema" in schema_job


def test_ui_publishes_only_on_loopback_by_default(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for port in svc.get("ports", []):
            spec = interpolate(str(port))
            assert spec.startswith("127.0.0.1:"), f"{name}: {port} is published beyond loopback"
    assert "TEMPORAL_AUTH_" in COMPOSE_FILE.read_text(), "UI auth settings must be documented"


# --------------------------------------------------------------------------- secrets


def test_no_plaintext_secrets(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for key, value in environment(svc).items():
            if SECRET_KEY.search(key):
                assert is_interpolated_secret(value), (
                    f"{name}: {key} must be `${{VAR}}` or `${{VAR:-dev-default}}` "
                    f"with a default from {sorted(DEV_DEFAULT_SECRETS)}, got {value!r}"
                )
    for path, value in walk_strings(compose):
        for password in url_passwords(value):
            assert is_interpolated_secret(password), f"{path}: password in URL: {value!r}"


def test_secret_check_catches_plain_passwords() -> None:
    assert is_interpolated_secret("${POSTGRES_PASSWORD:-sluice}")
    assert is_interpolated_secret("${POSTGRES_PASSWORD:?set it}")
    assert not is_interpolated_secret("hunter2")
    assert not is_interpolated_secret("${POSTGRES_PASSWORD:-hunter2}")
    assert url_passwords("postgresql://u:hunter2@db/x") == ["hunter2"]
    assert url_passwords("redis://redis:6379/0") == []
    assert url_passwords("postgresql://${U:-a}:${P:-b}@db/x") == ["${P:-b}"]
    assert interpolate("a${X:-b}c$${Y}") == "abc${Y}"


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_entrypoint_is_the_project_script() -> None:
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    module, _, attr = scripts["sluice"].partition(":")
    assert module == "sluice.cli.main"
    assert callable(getattr(importlib.import_module(module), attr))
    instructions = dockerfile_instructions()
    entrypoints = [rest for kw, rest in instructions if kw == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT"
    assert yaml.safe_load(entrypoints[-1]) == ["sluice"]  # exec form, JSON == YAML flow
    env = " ".join(rest for kw, rest in instructions if kw == "ENV")
    assert re.search(r"PATH=/app/\.venv/bin:", env), "the venv's bin must lead PATH"


def test_dockerfile_installs_with_uv_from_the_lockfile() -> None:
    instructions = dockerfile_instructions()
    runs = " ".join(rest for kw, rest in instructions if kw == "RUN")
    assert re.search(r"pip install \"?uv==", runs), "uv comes from PyPI, pinned"
    assert "uv sync --frozen --no-dev" in runs
    copies = " ".join(rest for kw, rest in instructions if kw == "COPY")
    assert "pyproject.toml" in copies and "uv.lock" in copies


def test_dockerfile_runs_as_non_root() -> None:
    users = [rest for kw, rest in dockerfile_instructions() if kw == "USER"]
    assert users, "no USER: the image would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".env"} <= ignored
    for needed in ("pyproject.toml", "uv.lock", "README.md", "sluice"):
        assert needed not in ignored, f"{needed} is needed by the image build"
