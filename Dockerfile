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
WORKDIR /app
ENTRYPOINT []
