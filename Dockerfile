# syntax=docker/dockerfile:1
# The curfew image: one image for every entrypoint (`curfew operator`, `curfew sidecar`,
# `curfew purge`, `curfew render`). Build: docker build -t curfew:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: installs curfew and its dependencies into a virtualenv that is copied whole.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/curfew
WORKDIR /src
# Dependencies first, so editing the code does not reinstall them. Only from the hashed runtime
# lock (requirements/runtime.txt, the same versions as the test lock): no resolver runs here.
COPY requirements/runtime.txt ./requirements/
RUN /opt/curfew/bin/pip install --require-hashes --no-deps -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/curfew/bin/pip install --no-deps --no-build-isolation . \
    && /opt/curfew/bin/pip check \
    && /opt/curfew/bin/python -m compileall -q /opt/curfew/lib \
    && /opt/curfew/bin/curfew --version

# Runtime stage: the same slim base, the virtualenv, and an unprivileged user.
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="curfew" \
      org.opencontainers.image.description="One session-timeout policy for every service in a Kubernetes cluster" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 65532 curfew \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin curfew
COPY --from=build /opt/curfew /opt/curfew
ENV PATH=/opt/curfew/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /tmp
# Numeric, so Kubernetes' runAsNonRoot can verify it without resolving a name.
USER 65532:65532
# 8080: the sidecar's listen port and the operator's liveness endpoint; 9090: metrics.
EXPOSE 8080 9090
ENTRYPOINT ["curfew"]
CMD ["--help"]
