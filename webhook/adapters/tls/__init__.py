"""Certificates for the webhook port, one concern a module:

- `issue`: generate a CA and serving pairs, write them (`kci-webhook certs`, dev certificates)
- `check`: what is wrong with a certificate and its key, every problem named
- `reload`: `ReloadingContext`, the serving pair reloaded in place without a restart

These modules and the certificate readers of `kci-webhook doctor` and `kci-webhook trust`
are the ones that import `cryptography` (an import contract in pyproject.toml holds it).
Callers import each name from the module that defines it.
"""
