"""The inventory's `monitoring:` section: what lbtk's Prometheus alert rules and Grafana dashboard
(fabfile/core/monitoring/) assume of the Prometheus that scrapes the directors, and how long each
condition must hold before its alert fires.

Times are whole seconds, as keepalived writes its own (advert_int, delay_loop, preempt_delay); the
rules file turns them into Prometheus durations. Every key is optional: an inventory without the
section renders rules with these defaults.
"""
from __future__ import annotations

import re

from pydantic import Field, PositiveInt, field_validator
from pydantic.fields import FieldInfo

from fabfile.model.fields import FieldProblem, Strict


def is_loopback(host: str | None) -> bool:
    """A host (an address, [IPv6] or a name) that only the machine itself reaches."""
    import ipaddress
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _for(default: int, what: str) -> FieldInfo:
    return Field(default, ge=0, le=86400, description=f"Seconds {what} before the alert fires (the rule's "
                 f"`for`; 0: at the first evaluation that sees it).")


class Monitoring(Strict):
    """The alert rules' thresholds and the Prometheus they run in (`inv render --monitoring`)."""
    scrape_interval: PositiveInt = Field(15, le=3600, description="Seconds between two scrapes of a director's "
                                         "node_exporter: the rules are evaluated as often, and a counter's rise "
                                         "is judged over at least 4 scrapes.")
    runbook_url: str = Field("runbooks/", description="Where the runbooks are, as the alerts' runbook_url starts: "
                             "your repository's web address of runbooks/ (ending in /), e.g. "
                             "https://git.example.com/ops/lbtk/-/blob/main/runbooks/.")
    split_brain_for: int = _for(30, "two nodes must both be MASTER of a VIP")
    no_master_for: int = _for(30, "a VIP must have no MASTER")
    preferred_node_for: int = _for(300, "a VIP must sit on another node than the one the inventory "
                                              "prefers (never for nopreempt instances)")
    auth_failures_for: int = _for(60, "keepalived's authentication failures must keep rising")
    adverts_stopped_for: int = _for(30, "a MASTER must send no advert, or a BACKUP receive none,")
    real_server_for: int = _for(60, "a real server must be out of the pool, or at weight 0 with no "
                                           "drain recorded,")
    sync_daemon_for: int = _for(60, "the IPVS sync daemon must be down where sync_daemon wants it")
    service_down_for: int = _for(30, "keepalived or nginx must be down on a director")
    ipvs_table_for: int = _for(120, "a director's IPVS table must differ from the inventory")
    silent_for: int = _for(120, "a director must publish no lbtk metrics")
    publish: bool = Field(False, description="Publish lbtk's metrics on every director (the `monitoring` phase "
                          "of `inv deploy`): Debian's prometheus-node-exporter with its ipvs and textfile "
                          "collectors, and a timer that writes keepalived's state as lbtk's metrics into its "
                          "textfile directory. false: the phase removes its files and units.")
    listen_address: str = Field(":9100", description="Where node_exporter listens on each director "
                                "(its --web.listen-address: HOST:PORT, or :PORT for every address).")
    publish_interval: PositiveInt = Field(15, le=3600, description="Seconds between two refreshes of a "
                                          "director's published lbtk metrics (the timer's period).")
    prometheus_url: str | None = Field(None, description="The web address of the Prometheus that runs these "
                                       "rules, as this machine reaches it (http:// or https://, host, port, and "
                                       "the path prefix of a Prometheus behind a proxy), e.g. "
                                       "http://prometheus.example:9090: `inv alerts` reads what fires there.")

    @property
    def listen_host(self) -> str:
        """listen_address's host, without IPv6 brackets ("" for :PORT, every address)."""
        return self.listen_address.rpartition(":")[0].strip("[]")

    @field_validator("runbook_url")
    @classmethod
    def _base(cls, v: str) -> str:
        # the rules append FILE.md#anchor: a base without its slash would glue the names together
        if not v.endswith("/") or any(c.isspace() for c in v) or not v.isprintable():
            raise ValueError(f"runbook_url {v!r} must be one word ending in / (runbook file names are appended)")
        return v

    @field_validator("listen_address")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not re.fullmatch(r"[A-Za-z0-9_.:\[\]-]*", host):
            raise FieldProblem((), f"{v!r} is not HOST:PORT or :PORT", "e.g. :9100 or 127.0.0.1:9100")
        return v

    @field_validator("prometheus_url")
    @classmethod
    def _prometheus(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from urllib.parse import urlsplit
        fix = "give Prometheus's web address, e.g. http://prometheus.example:9090"
        try:
            u = urlsplit(v)
            u.port      # noqa: B018 - a port out of range or not a number raises here
        except ValueError:
            u = None
        if u is not None and (u.username is not None or u.password is not None):   # never echoed: a password
            raise FieldProblem((), "the address holds credentials (USER:PASSWORD@), and the inventory holds no "
                               "secret", "give the address alone (a Prometheus that needs a login is not supported)")
        if u is None or u.scheme not in ("http", "https") or not u.hostname or any(c.isspace() for c in v) \
                or not v.isprintable():
            raise FieldProblem((), f"{v!r} is not an http:// or https:// address", fix)
        if u.query or u.fragment:
            raise FieldProblem((), f"{v!r} has a ?query or #fragment", fix + " (lbtk appends the API's path)")
        return v.rstrip("/")
