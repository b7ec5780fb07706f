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
WORKDIR /src
# Only what the install needs (.dockerignore keeps everything else, certs and keys above
# all, out of the build context).
COPY requirements.lock ./
# Every runtime dependency at the version `make lock` resolved, each file checked
# against its hash: the same inputs give the same image. All ship manylinux wheels for
# CPython 3.11, so no compiler is needed; pip compiles the .pyc files here, because the
# final image cannot write them at run time (read-only root filesystem).
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY webhook ./webhook
# The project itself, without resolving anything again (--no-deps), then no installer
# left behind.
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
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
