"""Configuration: a bad environment variable stops start-up with one readable line.

Each bad value must raise ConfigurationError naming the variable and what was
expected; the CLI turns that into exactly one ``error: ...`` line and exit code 2,
never a traceback. Valid values parse, and ``postgres://`` URLs get the asyncpg
driver SQLAlchemy needs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.config import DeploymentMode, Settings, load_settings
from sluice.errors import ConfigurationError
from tests.support import only_line

VARIABLES = (
    "SLUICE_MODE",
    "DATABASE_URL",
    "REDIS_URL",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "HEALTH_PORT",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "EMBEDDING_PROVIDER",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No Sluice variables set, and a working directory without a `.sluice/dev.env`."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SLUICE_MODE", "heavyweight", "'lightweight' or 'standard'"),
        ("DATABASE_URL", "mysql://x", "postgresql://"),
        ("TEMPORAL_ADDRESS", "nohost", "host:port"),
        ("TEMPORAL_ADDRESS", "localhost:99999", "host:port"),
        ("HEALTH_PORT", "99999", "65535"),
        ("HEALTH_PORT", "eighty", "integer"),
        ("REDIS_URL", "http://x", "redis://"),
        ("LOG_FORMAT", "xml", "console|json"),
        ("LOG_LEVEL", "loud", "DEBUG|INFO|WARNING|ERROR"),
        ("EMBEDDING_PROVIDER", "cohere", "local|openai"),
    ],
)
def test_bad_value_names_the_variable_and_what_was_expected(
    clean_env: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert name in message, message
    assert repr(value) in message, message
    assert expected in message, message
    assert "\n" not in message, "one line, not a pydantic report"


def test_every_bad_variable_is_reported_at_once(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SLUICE_MODE", "heavyweight")
    clean_env.setenv("REDIS_URL", "http://x")
    clean_env.setenv("HEALTH_PORT", "99999")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    for name in ("SLUICE_MODE", "REDIS_URL", "HEALTH_PORT"):
        assert name in message, message
    assert "\n" not in message


def test_passwords_in_a_bad_url_are_not_echoed(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DATABASE_URL", "mysql://admin:hunter2@db:3306/app")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "DATABASE_URL" in message
    assert "hunter2" not in message, message
    assert "admin:***@db" in message, message


def test_valid_values_parse(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SLUICE_MODE", "standard")
    clean_env.setenv("DATABASE_URL", "postgres://u:p@db.internal:5433/rag")
    clean_env.setenv("REDIS_URL", "rediss://cache:6380/2")
    clean_env.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    clean_env.setenv("HEALTH_PORT", "0")
    clean_env.setenv("LOG_FORMAT", "json")
    settings = load_settings()
    assert settings.sluice_mode is DeploymentMode.STANDARD
    assert settings.sqlalchemy_url == "postgresql+asyncpg://u:p@db.internal:5433/rag"
    assert settings.redis_url == "rediss://cache:6380/2"
    assert settings.temporal_address == "temporal.internal:7233"
    assert settings.health_port == 0
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h:5432/d", "postgresql+asyncpg://u@h:5432/d"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
    ],
)
def test_sqlalchemy_url_gets_the_asyncpg_driver(url: str, expected: str) -> None:
    assert load_settings(database_url=url).sqlalchemy_url == expected


def test_defaults_and_missing_database_url(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DATABASE_URL", "")
    settings = load_settings()
    assert settings.sluice_mode is DeploymentMode.LIGHTWEIGHT
    assert settings.database_url is None
    assert settings.health_port == 8080
    with pytest.raises(ConfigurationError, match="DATABASE_URL is not set"):
        _ = settings.sqlalchemy_url


def test_api_key_is_not_in_the_settings_repr(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("EMBEDDING_API_KEY", "sk-very-secret")
    settings = load_settings()
    assert settings.embedding_api_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(settings)
    assert isinstance(settings, Settings)


def _cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_bad_mode_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    result = _cli(["migrate"], tmp_path, SLUICE_MODE="bogus")
    assert result.returncode == 2, result
    line = only_line(result.stderr)
    assert line.startswith("error: "), line
    assert "SLUICE_MODE" in line
    assert "'bogus'" in line
    assert "'lightweight' or 'standard'" in line
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_bad_value_from_dev_env_file_is_reported_too(tmp_path: Path) -> None:
    """`.sluice/dev.env` (written by `sluice dev`) is read, and validated like the env."""
    (tmp_path / ".sluice").mkdir()
    (tmp_path / ".sluice" / "dev.env").write_text("REDIS_URL=http://not-redis\n")
    result = _cli(["migrate"], tmp_path)
    assert result.returncode == 2, result
    line = only_line(result.stderr)
    assert "REDIS_URL" in line and "redis://" in line
    assert "Traceback" not in result.stderr
