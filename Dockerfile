# Codex-Wrapper: the gateway and the pinned Codex CLI (from package-lock.json) in one image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Node and npm only to install the Codex package; the gateway runs Codex's native binary directly.
# bubblewrap and ca-certificates: Codex's sandbox helpers and TLS to the model provider.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm ca-certificates bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY app ./app
COPY codex_profile/*.sample.* ./codex_profile/

RUN useradd --create-home --uid 1000 codex \
    && mkdir -p /workspace /home/codex/.codex /home/codex/.local/share/codex-wrapper \
    && chown -R codex:codex /workspace /home/codex
USER codex

# The app binds 127.0.0.1 by default; inside a container it must listen on every interface.
ENV HOST=0.0.0.0 \
    PORT=8000 \
    CODEX_WORKDIR=/workspace \
    CODEX_HOME=/home/codex/.codex \
    CODEX_DATA_DIR=/home/codex/.local/share/codex-wrapper
VOLUME ["/workspace", "/home/codex/.codex", "/home/codex/.local/share/codex-wrapper"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

CMD ["python", "-m", "app", "serve"]
