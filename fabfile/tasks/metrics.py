"""`inv metrics`: lbtk's own metrics of every node, as a Prometheus scrape would read them."""
from __future__ import annotations

import sys

from invoke import Exit

from fabfile import output
from fabfile.core.monitoring import exposition
from fabfile.infra import facts as F
from fabfile.infra.observe import observe_nodes
from fabfile.tasks.common import DEFAULT_ENV, node_env, one_line_errors, task


@task(help={"env": "inventory name", "node": "only this node",
            "format": "openmetrics (default) | prometheus (the text format of node_exporter's textfile collector)"})
@one_line_errors
def metrics(c, env=DEFAULT_ENV, node=None, format=None):
    """lbtk's metrics of every node, as a Prometheus scrape reads them.

    VRRP state and counters, real server weights and drains, services: read in one round trip
    each, printed in OpenMetrics or Prometheus's text format."""
    fmt = exposition.check_format(format)
    e, nodes = node_env(env, node, quiet=True)      # stdout is the exposition alone
    states = observe_nodes(e, nodes, F.METRICS)
    sys.stdout.write(exposition.exposition(e.inv, states, fmt))
    down = exposition.silent(states)
    for line in down:
        print(output.visible(output.mask(line)), file=sys.stderr, flush=True)
    if down:
        raise Exit(code=1)
