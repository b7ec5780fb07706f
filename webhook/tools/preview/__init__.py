"""`kci-webhook mutate`: the server's mutation, offline, on manifests in files.

Pods and the pod templates of workloads go through exactly `webhook.core.mutation.create.mutate`;
everything else passes through unchanged. What it prints is safe to pipe into `kubectl
apply -f -`:

- stdout holds the admitted documents and nothing else; if any object is denied (or,
  with `--strict`, anything is warned about) stdout stays empty, so a pipeline applies
  nothing rather than the objects the webhook would refuse;
- denials and warnings go to stderr, each as `FILE:LINE: denied|warning: Kind/name: ...`;
- exit codes: 0 admitted, 1 denied or (`--strict`) warned, 2 unreadable input or config
  (a YAML error as `FILE:LINE:COL: ...`).

Documents the webhook does not change are printed exactly as written (comments too); a
changed one is the smallest edit of its text (`edit`), or, where that cannot be made,
re-serialized in its place. `-o json` prints one object, or a `v1 List` of several (an
input List's items among them), as `kubectl get -o json` does. `--diff` compares the file
as written with that output.

Its modules, bottom up: `documents` (YAML in with positions, YAML/JSON out, splicing),
`edit` (a changed document as an edit of its text), `lint` (what admission would ignore
without a word), `objects` (the mutation of each object, and the findings), `command`
(arguments and exit codes).
"""

from __future__ import annotations

from webhook.tools.preview.command import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, add_parser, run
from webhook.tools.preview.documents import Document, InputError, load
from webhook.tools.preview.objects import Finding, Preview, preview

__all__ = ["EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "Document", "Finding", "InputError",
           "Preview", "add_parser", "load", "preview", "run"]
