# syntax=docker/dockerfile:1.7
# One image for the API, the streamer, the Dagster code location (and its run
# and step pods) and the MLflow server. torch comes from PyTorch's CPU or CUDA
# wheel index, chosen at build time:
#   docker build --build-arg TORCH_VARIANT=cpu   -t ghcr.io/sonicforge/sonicforge:0.1.0 .
#   docker build --build-arg TORCH_VARIANT=cu128 -t ghcr.io/sonicforge/sonicforge:0.1.0-cuda .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VARIANT=cpu
ARG TORCH_VERSION=2.13.0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, from its own index: from PyPI, pip would pull a multi-GB CUDA build.
RUN pip install "torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sonicforge ./sonicforge
COPY cli ./cli
COPY orchestration ./orchestration
COPY assets ./assets
COPY models ./models
COPY analytics ./analytics
COPY serving ./serving
COPY streaming ./streaming
COPY workspace.yaml ./
RUN pip install ".[musicgen]" "torch==${TORCH_VERSION}" \
 && pip check

FROM ${PYTHON_IMAGE} AS runtime
ARG TORCH_VARIANT=cpu
LABEL org.opencontainers.image.title="sonicforge" \
      org.opencontainers.image.description="SonicForge: API, streamer, Dagster code location, MLflow" \
      io.sonicforge.torch-variant="${TORCH_VARIANT}"
# libsndfile for soundfile; everything else (FFmpeg included) ships in wheels.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsndfile1 tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 sonicforge \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/sonicforge --create-home sonicforge
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/workspace.yaml /opt/sonicforge/workspace.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SONICFORGE_VAR_DIR=/var/lib/sonicforge \
    DAGSTER_HOME=/var/lib/sonicforge/dagster
WORKDIR /opt/sonicforge
USER 10001:10001
# SONICFORGE_API_PORT's default (sonicforge/settings.py); the code server's 3030.
EXPOSE 8000 3030
# tini alone as the entrypoint: Dagster's chart and launchers give whole
# commands (`dagster api grpc ...`, `dagster api execute_run ...`).
ENTRYPOINT ["tini", "--"]
CMD ["sonicforge", "serve"]
