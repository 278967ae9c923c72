# Codex-Wrapper: the gateway, its Python packages and the pinned Codex CLI's native binary. No Node, no npm.
#   docker build -t codex-wrapper .
# Behind a TLS-inspecting proxy, give the build its CA bundle as a secret (never stored in a layer):
#   docker build --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt -t codex-wrapper .
# The base is pinned to its Debian release (trixie) so that a rebuild does not silently move to another one.

# Stage 1: the Codex package pinned in package-lock.json; only its native files go on.
FROM python:3.11-slim-trixie AS codex
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca_bundle; fi \
    && npm ci --no-audit --no-fund \
    && mkdir -p /opt/codex \
    && cp -a node_modules/@openai/codex-linux-*/vendor/*/. /opt/codex/ \
    && /opt/codex/bin/codex --version

# Stage 2: requirements.txt in a virtual environment.
FROM python:3.11-slim-trixie AS python
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --quiet -r /tmp/requirements.txt

# The image: Python, the app, Codex's native files (its binary, bwrap and rg as the package lays them out).
FROM python:3.11-slim-trixie
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
COPY --from=codex /opt/codex /opt/codex
COPY --from=python /opt/venv /opt/venv
WORKDIR /app
COPY app ./app
COPY package.json ./
COPY codex_profile/*.sample.* ./codex_profile/

RUN useradd --create-home --uid 1000 codex \
    && mkdir -p /workspace /home/codex/.codex /home/codex/.local/share/codex-wrapper \
    && chown -R codex:codex /workspace /home/codex
USER codex

# The app binds 127.0.0.1 by default; inside a container it must listen on every interface.
ENV HOST=0.0.0.0 \
    PORT=8000 \
    CODEX_PATH=/opt/codex/bin/codex \
    CODEX_WORKDIR=/workspace \
    CODEX_HOME=/home/codex/.codex \
    CODEX_DATA_DIR=/home/codex/.local/share/codex-wrapper
VOLUME ["/workspace", "/home/codex/.codex", "/home/codex/.local/share/codex-wrapper"]
EXPOSE 8000

# Healthy means ready (GET /ready on $PORT): Codex answers and, in agent mode, its sandbox works.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-m", "app.healthcheck"]

CMD ["python", "-m", "app", "serve"]
