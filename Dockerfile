# gettok for the Prefect server, the workers and the sandbox. The GPU worker builds on a CUDA
# base image (see docker-compose.yml); CTranslate2's wheels bring their own CUDA kernels.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    espeak-ng python3 python3-pip python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The same locked set as `make run`/`make test` (uv.lock), the project installed non-editable.
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir 'uv==0.13.9'
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never
COPY pyproject.toml uv.lock README.md ./
COPY gettok gettok
COPY models models
COPY tasks tasks
COPY flows flows
RUN /opt/uv/bin/uv sync --frozen --no-editable --no-cache --python python3
COPY campaigns campaigns
COPY deployments deployments
