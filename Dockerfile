# Build stage: wheels for cartbands, with the pure core (recovery/) compiled by mypyc
# (CARTBANDS_MYPYC=1, see setup.py), and for its dependencies. The compiler stays here.
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN CARTBANDS_MYPYC=1 pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: the installed wheels only, no sources beside them (a source tree in the
# working directory would shadow the compiled modules for `python -m cartbands`).
FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels cartbands \
 && rm -rf /wheels \
 && python -c "from cartbands.runtime import compiled_core; assert compiled_core()"
# An unprivileged user owns the only places the processes write: RocksDB tables and the outbox
# (a volume mounted on /var/lib/cartbands/outbox takes this directory's owner).
RUN useradd --system --uid 10001 --home-dir /var/lib/cartbands --shell /usr/sbin/nologin cartbands \
 && mkdir -p /var/lib/cartbands/state /var/lib/cartbands/outbox \
 && chown -R cartbands:cartbands /var/lib/cartbands
ENV CARTBANDS_STATE_DIR=/var/lib/cartbands/state \
    CARTBANDS_OUTBOX_DIR=/var/lib/cartbands/outbox \
    CARTBANDS_HEALTH_URL=http://127.0.0.1:8080/readyz
USER cartbands
WORKDIR /var/lib/cartbands
# Healthy when the process says it can do its work: the gateway's /readyz (the default URL), a
# worker's or sender's /readyz on its metrics port (set CARTBANDS_HEALTH_URL, e.g.
# http://127.0.0.1:9100/readyz).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['CARTBANDS_HEALTH_URL'], timeout=4)"]
ENTRYPOINT []
