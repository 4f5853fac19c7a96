# gettok for the Prefect server, the workers and the sandbox. The GPU worker builds on a CUDA
# base image (see docker-compose.yml); CTranslate2's wheels bring their own CUDA kernels.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    espeak-ng python3 python3-pip python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY gettok gettok
COPY models models
COPY tasks tasks
COPY flows flows
RUN pip install --no-cache-dir .
COPY campaigns campaigns
COPY deployments deployments
