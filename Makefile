# kci-webhook — every target sets up what it needs on a fresh Debian machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The tests run the versions the image ships: requirements.lock's runtime pins, plus the
# test tools, every file checked against its hash.
TEST_LOCK := requirements-test.lock
# Serving only: the locked runtime dependencies and the package, no test tools.
RUNTIME_STAMP := $(VENV)/.installed-runtime
LOCK   := requirements.lock
# What building the compiled core needs (setuptools, mypy's mypyc), with hashes too.
BUILD_LOCK := requirements-build.lock
HOST   ?= 127.0.0.1
PORT   ?= 8443
# Debian packages the tests start for real (a registry, skopeo to push test images,
# containerd and runc to pull what node-config writes, prometheus for promtool to check
# and unit-test the chart's alerts).
DEB_PACKAGES ?= docker-registry skopeo wrk containerd runc prometheus
# What compiling the core needs (hack/native.py: mypyc's C through the system compiler).
BUILD_PACKAGES ?= gcc libc6-dev

.PHONY: all venv deps build-deps run lock image native test lint typecheck bench bench-compare soak fuzz clean certs manifests chart-docs

all: test

$(STAMP): pyproject.toml setup.py $(LOCK) $(TEST_LOCK) $(BUILD_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(TEST_LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(BUILD_LOCK)
	KCI_WEBHOOK_PURE=1 $(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# The same dependency versions the image runs (Dockerfile), checked against their hashes.
$(RUNTIME_STAMP): pyproject.toml setup.py $(LOCK) $(BUILD_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(BUILD_LOCK)
	KCI_WEBHOOK_PURE=1 $(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(RUNTIME_STAMP)

# Install the missing Debian packages of $(1) (CI runs as root; elsewhere sudo is used).
define install_missing
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

deps:
	$(call install_missing,$(DEB_PACKAGES) $(BUILD_PACKAGES))

build-deps:
	$(call install_missing,$(BUILD_PACKAGES))

# Loopback by default; `make run HOST=0.0.0.0 PORT=9443` to listen elsewhere.
run: $(RUNTIME_STAMP) build-deps
	$(BIN)/python -m hack.native
	$(BIN)/kci-webhook serve --config examples/config.yaml --host $(HOST) --port $(PORT)

# Re-resolve the runtime dependencies of pyproject.toml into $(LOCK), then the test tools
# into $(TEST_LOCK) under the runtime pins (-c), every file's hash included. Resolved for
# the Python that runs it: use the image's (3.11).
PIP_COMPILE = CUSTOM_COMPILE_COMMAND='make lock' $(BIN)/pip-compile --quiet --generate-hashes \
	  --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links --no-emit-trusted-host
lock:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'pip-tools>=7.4'
	$(PIP_COMPILE) --output-file $(LOCK) pyproject.toml
	$(PIP_COMPILE) --extra test --constraint $(LOCK) --output-file $(TEST_LOCK) pyproject.toml
	$(PIP_COMPILE) --only-build-deps --build-deps-for wheel --constraint $(TEST_LOCK) \
	  --output-file $(BUILD_LOCK) pyproject.toml

# The image, FROM its base image pinned by digest. The digest is read from the registry at
# build time (skopeo inspect), never written by hand; where the registry cannot be reached
# the build stops instead of falling back to the floating tag.
BASE_IMAGE ?= python:3.11-slim-bookworm
IMAGE      ?= kci-webhook:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
image: deps
	@digest=$$(skopeo inspect --format '{{.Digest}}' docker://docker.io/library/$(BASE_IMAGE)) \
	  || { echo "make image: cannot read the digest of $(BASE_IMAGE) from its registry;" \
	       "refusing to build on a floating tag" >&2; exit 2; }; \
	echo "base image $(BASE_IMAGE)@$$digest"; \
	docker build --build-arg PYTHON_IMAGE=$(BASE_IMAGE)@$$digest -t $(IMAGE) .

lint: $(STAMP)
	$(BIN)/ruff check webhook tests bench hack
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The core compiled in place (hack/native.py: only what changed), as the image runs it; the
# tests refuse to run a compiled module older than its source, or none at all here.
native: $(STAMP) build-deps
	$(BIN)/python -m hack.native

test: $(STAMP) deps lint typecheck native
	KCI_WEBHOOK_NATIVE=required $(BIN)/pytest -q

bench: $(STAMP) deps native
	$(BIN)/python -m bench
	$(BIN)/python -m bench.namespaces

# The in-process admission cost of this tree beside another revision, in one run.
BASE ?= HEAD~1
bench-compare: $(STAMP)
	$(BIN)/python -m bench.compare --base $(BASE)

# 10 minutes of load while the certificate and config rotate every 30 s (not in `make test`).
soak: $(STAMP) native
	$(BIN)/python -m bench.soak

# Coverage-guided fuzzing of decode → mutate → patch → encode (atheris), a fixed budget.
FUZZ_RUNS ?= 100000
fuzz: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,fuzz]'
	$(BIN)/python -m bench.fuzz -atheris_runs=$(FUZZ_RUNS)

# manifests/base (and the cert-manager overlay's certificates) are rendered from the Helm
# chart, and the values table of docs/helm.md from its schema; tests fail when they differ.
manifests: $(STAMP)
	$(BIN)/python -m hack.chart_render manifests

chart-docs: $(STAMP)
	$(BIN)/python -m hack.chart_render docs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache *.egg-info build
	find webhook -name '*.so' -delete
