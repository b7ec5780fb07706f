"""Build scripts: what `make manifests` and `make chart-docs` run."""
