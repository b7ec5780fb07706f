"""`kci-webhook doctor`: check a registry the way a node pulls from it, step by step.

A failed pull reaches people as `ErrImagePull` and one line of reason (`x509: certificate
signed by unknown authority`, `connection refused`, `401 Unauthorized`). The doctor walks
the path a node walks, from this machine, and stops at the first step a pull would fail:

1. `resolve`  the registry's name; `--host-alias IP=HOST` acts as the /etc/hosts entries
              that `k8s.ksyun.com/kci-host-aliases` gives the node;
2. `connect`  TCP to the port;
3. `tls`      the handshake, verified as containerd verifies (the system store plus `--ca`,
              SANs only, TLS 1.2 or newer), and when it fails, why: unknown authority (the
              chain served, whether the leaf is self-signed, what `--ca` holds instead),
              expired or not yet valid (the dates), name mismatch (the SANs against the
              name asked), a port that speaks plain HTTP, a server stuck below TLS 1.2;
              a `--ca` holding a server's (leaf) certificate instead of its CA gets a note;
4. `v2`       `GET /v2/`, the registry API's ping, and its `WWW-Authenticate` challenge;
              it passes only on a registry's answer (the `Docker-Distribution-Api-Version`
              header, or a registry's challenge): a plain web server is a FAIL;
5. `auth`     the challenge answered: Basic, or a Bearer token from the challenge's realm,
              with `--creds` (a dockerconfigjson: what a pull secret holds);
6. `manifest` with `--image`: `HEAD /v2/<repository>/manifests/<tag|digest>` with the
              manifest types containerd accepts, and the digest.

REGISTRY may be written as a mirror endpoint is in the config (`https://host/v2/<ns>`:
`--image` then names the source repository, under the namespace as the webhook rewrites
it), and `--config FILE` checks every mirror of a config with its own files.

Every failure names its fix in the vendor documentation's terms: the CA in the mirror's
`caFile`, on the nodes (containerd's `hosts.toml` or the node's trust store; with
`--nodes tanzu`, a TkgServiceConfiguration's `additionalTrustedCAs`, `kci-webhook trust`),
and the KCI annotations `kci-insecure-registry`, `kci-http-registry`, `kci-host-aliases`,
`kci-dns-config`. Exit code 0 only when a pull would work, 1 when it would not, 2 for a
usage error. Like the presence check (`webhook.adapters.registry`), it never sends
credentials over plain http:// and ignores proxy variables. Every network operation is
bounded by `--timeout`.

This is a shell module: it dials, handshakes and prints; nothing in the core imports it.
httpx and the registry code that needs it load only when a diagnosis runs (`lazy`), so the
other commands, whose parsers the CLI builds alongside this one, start without them.

Its modules, bottom up; each imports only modules listed before it:

- `lazy`: httpx and the transport-error wording, imported on first use
- `errors`: UsageError (a command line that cannot be run) and the exit codes
- `report`: `Step`, one step's outcome with its fix and its `--json` facts; `_Fail` ends one
- `target`: the registry as image references write it: `Target`, `parse_target`
- `certs`: the TLS contexts (verifying as containerd does; unverified, to look), the
  peer's chain, certificates put into words
- `options`: the command line validated into `Options`: host aliases, `--ca`, `--creds`,
  `--image`
- `session`: what the steps hand on (addresses, the one that answered, the challenge) and
  HTTP to that address
- `resolve`, `connect`, `handshake` (the `tls` step), `v2`, `auth`, `manifest`: one step
  each, in the order they run
- `diagnosis`: `Doctor`, the steps in order, stopping at the first failure
- `output`: the printed report
- `command`: the `kci-webhook doctor` arguments and exit codes

The names below are the package's surface; `webhook.cli` needs only `add_parser`.
"""

from __future__ import annotations

from webhook.tools.doctor.command import DEFAULT_TIMEOUT, add_parser, run
from webhook.tools.doctor.diagnosis import Doctor
from webhook.tools.doctor.errors import EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError
from webhook.tools.doctor.handshake import EXPIRY_WARNING
from webhook.tools.doctor.options import (
    Options,
    load_ca_file,
    mirror_options,
    options_from_args,
    parse_host_aliases,
    parse_image,
)
from webhook.tools.doctor.output import print_report
from webhook.tools.doctor.report import STEPS, Step
from webhook.tools.doctor.session import USER_AGENT
from webhook.tools.doctor.target import DOCKER_HUB_API, Target, parse_target

__all__ = [
    "DEFAULT_TIMEOUT", "DOCKER_HUB_API", "EXIT_FAIL", "EXIT_OK", "EXIT_USAGE", "EXPIRY_WARNING",
    "STEPS", "USER_AGENT",
    "Doctor", "Options", "Step", "Target", "UsageError",
    "add_parser", "load_ca_file", "mirror_options", "options_from_args", "parse_host_aliases",
    "parse_image", "parse_target", "print_report", "run",
]
