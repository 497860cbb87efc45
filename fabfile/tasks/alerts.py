"""`inv alerts`: what fires in Prometheus for the cluster, beside what verify says."""
from __future__ import annotations

from invoke import Exit

from fabfile import output
from fabfile.tasks.common import DEFAULT_ENV, check_format, node_env, one_line_errors, task


@task(help={"env": "inventory name", "json": "one JSON object: ok, prometheus_url, alerts, verify",
            "format": "auto|rich|plain|markdown", "no_verify": "Prometheus's alerts alone (no node is touched)",
            "no_http": "verify without the HTTP GET through each VIP"})
@one_line_errors
def alerts(c, env=DEFAULT_ENV, json=False, format=None, no_verify=False, no_http=False):
    """The cluster's alerts pending or firing in the Prometheus `monitoring.prometheus_url` names.

    Read through its HTTP API from this machine, beside what verify finds on the nodes. Exit 1 when
    an alert fires or a check fails."""
    from fabfile.ops.alerts import alerts as read
    from fabfile.views import alerts as view
    check_format(format)
    e, nodes = node_env(env, quiet=json)
    r = read(e, nodes, verify=not no_verify, http=not no_http)
    if json:
        output.show_json(r.as_json())
    else:
        view.show(r, format)
    if not r.ok:
        raise Exit(code=1)
