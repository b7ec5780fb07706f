"""`kci-webhook plan`: what the webhook would change, and what would break, in a live
cluster, before a config is switched on or changed.

Its modules, bottom up: `collect` (the cluster's Pods and workloads' pod templates as
units, namespace by namespace where the user's rights require), `findings` (the server's
mutation on each unit, and one finding per container), `render` (table, JSON, YAML, the
summaries, `--compare`), `planner` (the registry's and the API server's answers between
the pure steps), `console` (warnings and progress on stderr), `command` (arguments, the
configs, exit codes). The cluster is read by `webhook.adapters.cluster`; the mirrors are asked by
`webhook.adapters.registry.survey`.
"""

from __future__ import annotations

from webhook.tools.plan.command import EXIT_CANNOT_RUN, EXIT_FOUND, EXIT_OK, add_parser, run

__all__ = ["EXIT_CANNOT_RUN", "EXIT_FOUND", "EXIT_OK", "add_parser", "run"]
