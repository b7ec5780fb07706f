"""`kci-webhook node-config`: containerd's registry configuration from the webhook's config.

The webhook decides which registry a pod pulls from; the node's containerd decides whether
that pull works (trusts the mirror's CA, speaks plain HTTP to an `http://` mirror). Both
come from the same config file here, so they cannot disagree.

Its modules, bottom up; each imports only modules listed before it:

- `render`: the hosts.toml files a config asks for (a function of data, no I/O)
- `files`: writing them into containerd's `config_path`: atomically, only what it owns
- `watch`: `--watch` (poll the config and CA files, converge), /readyz and /metrics
- `command`: the `kci-webhook node-config` arguments and exit codes

The names below are the package's surface; `webhook.cli` needs only `add_parser`.
"""

from __future__ import annotations

from webhook.tools.nodeconfig.command import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_parser, run
from webhook.tools.nodeconfig.files import Outcome, apply, owner
from webhook.tools.nodeconfig.render import CA_FILE, HOSTS_FILE, MARKER, HostDir, Plan, plan
from webhook.tools.nodeconfig.watch import Status, run_once, serve_status, watch

__all__ = ["CA_FILE", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "HOSTS_FILE", "MARKER", "HostDir",
           "Outcome", "Plan", "Status", "add_parser", "apply", "owner", "plan", "run",
           "run_once", "serve_status", "watch"]
