# kci-webhook container image.
#
#   docker build -t kci-webhook:0.1.0 .
#   docker run --rm -p 8443:8443 --read-only --user "$(id -u):$(id -g)" \
#     -v "$PWD/certs:/etc/kci-webhook/tls:ro" \
#     -v "$PWD/examples/config.yaml:/etc/kci-webhook/config/config.yaml:ro" kci-webhook:0.1.0
#
# The config file and the TLS pair are mounts (a ConfigMap and a Secret in the cluster),
# never baked in (--user: the dev key in certs/ is readable by its owner only). No
# HEALTHCHECK: Kubernetes probes /healthz and /readyz itself.

# `make image` passes the base image pinned by the digest its registry answers
# (python:3.11-slim-bookworm@sha256:…); the tag alone is for local tries.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the locked dependencies and the project, installed into a venv -------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# A C compiler for the compiled core (setup.py: mypyc), in this stage only. Not pinned by
# version: it is the base image's Debian release (pinned by digest), and nothing of it but
# the compiled modules reaches the final image.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
# Only what the install needs (.dockerignore keeps everything else, certs and keys above
# all, out of the build context).
COPY requirements.lock requirements-build.lock ./
# Every runtime dependency at the version `make lock` resolved, each file checked
# against its hash: the same inputs give the same image. All ship manylinux wheels for
# CPython 3.11; pip compiles the .pyc files here, because the final image cannot write
# them at run time (read-only root filesystem). The build tools (setuptools, mypy) go to
# a venv of their own, locked and checked the same way, and never reach the image.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock \
 && python -m venv /opt/build \
 && /opt/build/bin/pip install --no-cache-dir --require-hashes -r requirements-build.lock
COPY pyproject.toml setup.py README.md ./
COPY webhook ./webhook
# The project as a wheel with its core compiled (no isolation: the locked build tools
# above, nothing fetched again), then installed without resolving anything (--no-deps),
# and no installer left behind.
RUN /opt/build/bin/pip wheel --no-cache-dir --no-build-isolation --no-deps \
        --wheel-dir /tmp/wheels . \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps /tmp/wheels/kci_webhook-*.whl \
 && /opt/venv/bin/python -c "import webhook.core.admission.patch as m; assert not m.__file__.endswith('.py'), m.__file__" \
 && /opt/venv/bin/pip uninstall --yes pip setuptools

# --- final: the venv on a clean slim image, no build tools, no wheels --------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="kci-webhook" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook for private and mirrored container registries" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A named non-root user (numeric 65532, as the Deployment's runAsUser), and the mount
# points for the config and the TLS Secret.
RUN groupadd --system --gid 65532 kci-webhook \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin kci-webhook \
 && mkdir -p /etc/kci-webhook/tls
COPY --from=build /opt/venv /opt/venv
USER 65532:65532
WORKDIR /
EXPOSE 8443
ENTRYPOINT ["kci-webhook"]
CMD ["serve", "--config=/etc/kci-webhook/config/config.yaml", "--port=8443", \
     "--cert=/etc/kci-webhook/tls/tls.crt", "--key=/etc/kci-webhook/tls/tls.key"]
