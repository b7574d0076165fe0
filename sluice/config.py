"""Every environment variable Sluice reads, validated once at start-up.

A bad value stops start-up with one line that names the variable and what was
expected (see :func:`load_settings`), instead of a traceback deep inside a worker.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sluice.errors import ConfigurationError


class DeploymentMode(StrEnum):
    """``lightweight``: one background worker polls every queue; ``standard``: one per kind."""

    LIGHTWEIGHT = "lightweight"
    STANDARD = "standard"


DEV_ENV_FILE = ".sluice/dev.env"
"""Written by a running `sluice dev` so other `sluice` commands in the same folder find it."""


class Settings(BaseSettings):
    """Sluice's configuration. Unset service URLs mean "start the embedded one" in `sluice dev`."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", env_file=DEV_ENV_FILE
    )

    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://user:pass@host:port/db (or postgresql://...).",
    )
    redis_url: str | None = Field(default=None, description="redis://host:port/db")
    temporal_address: str | None = Field(default=None, description="host:port of Temporal.")
    temporal_namespace: str = Field(default="default", min_length=1)
    sluice_mode: DeploymentMode = DeploymentMode.LIGHTWEIGHT
    sluice_data_dir: Path = Path(".sluice")
    default_tenant: str = "default"
    log_format: str = Field(default="console", pattern="^(console|json)$")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    health_port: int = Field(default=8080, ge=0, le=65535)
    worker_shutdown_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="On SIGTERM, how long running activities may finish (keep it below the "
        "orchestrator's grace period, e.g. Kubernetes terminationGracePeriodSeconds).",
    )
    embedding_provider: str = Field(default="local", pattern="^(local|openai)$")
    embedding_base_url: str | None = None
    embedding_model: str | None = None
    embedding_api_key: str | None = Field(default=None, repr=False)
    search_vector_weight: float = Field(
        default=1.0, ge=0, description="Weight of the vector side in rank fusion."
    )
    search_text_weight: float = Field(
        default=1.0, ge=0, description="Weight of the full-text (BM25-style) side in fusion."
    )
    search_rrf_k: int = Field(default=60, ge=1, description="Reciprocal-rank-fusion constant.")
    search_candidates: int = Field(
        default=100, ge=10, le=1000, description="Chunks each side contributes to fusion."
    )

    schedule_intervals: dict[str, int] = Field(
        default_factory=dict,
        description='Per-job interval overrides in seconds, JSON: {"connector-reconcile": 60}. '
        "Defaults are the seeds' (schedules/table.py).",
    )
    staged_batch_orphan_seconds: int = Field(
        default=3600, ge=60, description="Age after which an unneeded staged batch is removed."
    )
    prune_interval_seconds: int = Field(
        default=86400,
        ge=0,
        description="Default prune interval of a cc-pair without its own (0: never prune).",
    )
    permission_sync_interval_seconds: int = Field(
        default=1800,
        ge=0,
        description="Default permission-sync interval of a cc-pair without its own "
        "(0: never sync permissions on a schedule).",
    )
    index_attempt_retention_days: int = Field(
        default=30, ge=1, description="Attempts older than this go (each pair's latest stays)."
    )
    user_file_max_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1,
        description="A larger upload is refused with a failed status (nothing is stored).",
    )

    sluice_payload_keys: str | None = Field(
        default=None,
        repr=False,
        description="Payload encryption keys, KEY_ID:BASE64_32_BYTES, comma-separated; the "
        "first encrypts, all decrypt (rotation). Unset: payloads are not encrypted.",
    )
    sluice_codec_token: str | None = Field(
        default=None, repr=False, description="Bearer token the codec server requires."
    )
    sluice_codec_port: int = Field(default=8081, ge=0, le=65535)
    sluice_codec_endpoint: str | None = Field(
        default=None, description="URL of the codec server as the Web UI (browser) reaches it."
    )
    sluice_codec_cors_origins: str = Field(
        default="http://127.0.0.1:8233,http://localhost:8233,"
        "http://127.0.0.1:8088,http://localhost:8088",
        description="Web UI origins allowed to call the codec server, comma-separated.",
    )
    metrics_sdk_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Loopback port of the Temporal SDK's Prometheus exporter (0: any free "
        "one); its figures are served again on HEALTH_PORT's /metrics.",
    )
    alert_backlog_minutes: float = Field(
        default=5.0, gt=0, description="`sluice status` marks a queue whose oldest task is older."
    )
    sluice_worker_deployment: str | None = Field(
        default=None,
        description="Temporal Worker Deployment the workers belong to (worker versioning); "
        "set together with SLUICE_WORKER_BUILD_ID. Unset: unversioned workers.",
    )
    sluice_worker_build_id: str | None = Field(
        default=None,
        description="This release's build ID in SLUICE_WORKER_DEPLOYMENT (e.g. the image tag).",
    )

    @field_validator("sluice_payload_keys")
    @classmethod
    def _payload_keys(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        from sluice.payload_keys import parse_keys

        parse_keys(value)  # PayloadKeyError is a ValueError: reported as this variable's
        return value

    @field_validator("sluice_codec_token", "sluice_codec_endpoint")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @property
    def payload_keys(self) -> list[tuple[str, bytes]]:
        """``[(key_id, key), ...]``, current first; empty when encryption is off."""
        from sluice.payload_keys import parse_keys

        return parse_keys(self.sluice_payload_keys) if self.sluice_payload_keys else []

    @property
    def codec_origins(self) -> list[str]:
        return [o.strip() for o in self.sluice_codec_cors_origins.split(",") if o.strip()]

    @field_validator("sluice_worker_deployment", "sluice_worker_build_id")
    @classmethod
    def _versioning_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value.strip() == "":
            return None
        # A version is written DEPLOYMENT.BUILD_ID: a deployment name has no '.'.
        if info.field_name == "sluice_worker_deployment":
            pattern, chars = r"[A-Za-z0-9][A-Za-z0-9_:-]{0,254}", "'_', '-' or ':'"
        else:
            pattern, chars = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}", "'_', '-', ':' or '.'"
        if not re.fullmatch(pattern, value):
            raise ValueError(f"expected up to 255 letters, digits, {chars}")
        return value

    @property
    def worker_version(self) -> tuple[str, str] | None:
        """(deployment name, build ID) when worker versioning is on; one without the other
        is refused with a line naming both (checked where workers are built, so a half
        set pair never reaches a command that runs none)."""
        deployment, build_id = self.sluice_worker_deployment, self.sluice_worker_build_id
        if deployment is None and build_id is None:
            return None
        if deployment is None or build_id is None:
            raise ConfigurationError(
                "SLUICE_WORKER_DEPLOYMENT and SLUICE_WORKER_BUILD_ID are set together or not "
                f"at all (SLUICE_WORKER_DEPLOYMENT={deployment!r}, "
                f"SLUICE_WORKER_BUILD_ID={build_id!r})"
            )
        return deployment, build_id

    @field_validator("schedule_intervals")
    @classmethod
    def _schedule_intervals(cls, value: dict[str, int]) -> dict[str, int]:
        # Job names are checked against schedules/table.py where schedules are synced.
        for name, seconds in value.items():
            if seconds < 1:
                raise ValueError(f"{name}: interval must be at least 1 second, got {seconds}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgresql+asyncpg://", "postgres://")):
            raise ValueError("expected a postgresql:// or postgresql+asyncpg:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("temporal_address")
    @classmethod
    def _temporal_address(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected host:port, e.g. localhost:7233")
        return value

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the asyncpg driver SQLAlchemy needs."""
        if self.database_url is None:
            raise ConfigurationError("DATABASE_URL is not set (run `sluice dev` or set it)")
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        return url

    @property
    def asyncpg_dsn(self) -> str:
        """The database URL as asyncpg's own ``connect`` takes it (no driver suffix)."""
        url = self.sqlalchemy_url
        return "postgresql://" + url.removeprefix("postgresql+asyncpg://")


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_SECRET_NAMES = ("KEY", "PASSWORD", "SECRET", "TOKEN")


def _shown(name: str, value: object) -> str:
    """The bad value as it goes into the error line, with credentials masked."""
    if any(part in name for part in _SECRET_NAMES):
        return "'***'"
    if isinstance(value, str):
        value = _URL_PASSWORD.sub(r"\1***@", value)
    return repr(value)


def format_validation_error(error: ValidationError) -> str:
    """One part per bad variable: ``SLUICE_MODE='x': Input should be 'lightweight' or ...``.

    Passwords in URLs (and values of *_KEY/*_TOKEN-like variables) are masked: the line
    ends up on terminals and in CI logs.
    """
    lines = []
    for item in error.errors():
        name = str(item["loc"][0]).upper() if item["loc"] else "settings"
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{name}={_shown(name, item.get('input'))}: {message}")
    return "; ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read and validate the environment, raising ConfigurationError with a readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError("invalid configuration: " + format_validation_error(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
