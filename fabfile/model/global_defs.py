"""keepalived's global settings beyond router_id: e-mail alerts, gratuitous ARP timing, strict
VRRP, notify FIFOs, IPVS timeouts; the rules keepalived enforces on them (or silently applies),
and the old spellings keepalived's samples still use.

The fields live on fabfile.model.schema.GlobalDefs; the cross-field rules that need the whole
inventory (vrrp_strict against the instances) are `problems(inv)`, called by its cross rules.
"""
from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from fabfile.model.fields import FieldProblem, Strict, _check_any_ip, keepalived_word

LVS_MAX_TIMEOUT = 86400 * 31      # keepalived's global_data.h: 31 days
SMTP_PORT = 25

# old names keepalived's samples and old configs use, read as today's: {old: (new, since when)}
LEGACY_GLOBAL = {"lvs_id": ("router_id", "keepalived 1.1.8; keepalived 2.x refuses lvs_id")}


def read_legacy(data, legacy: dict[str, tuple[str, str]]):
    """A section's mapping with its old key names replaced by today's (a FieldProblem when both
    are given: one of them would be lost)."""
    if not isinstance(data, dict) or not any(k in data for k in legacy):
        return data
    out = dict(data)
    for old, (new, _) in legacy.items():
        if old in out:
            if new in out:
                raise FieldProblem((old,), f"{old} is the old name of {new}, and both are given",
                                   f"keep {new} only")
            out[new] = out.pop(old)
    return out


class SmtpServer(Strict):
    """Where keepalived sends its alert mails: `smtp_server HOST [PORT]`."""
    host: str = Field(description="The SMTP relay's address (IPv4 or IPv6) or DNS name.")
    port: int = Field(SMTP_PORT, ge=1, le=65535, description="Its port.")

    @model_validator(mode="before")
    @classmethod
    def _from_words(cls, v):
        # keepalived's own form, `smtp_server: 192.0.2.25` or `smtp_server: mail.example 587`
        if isinstance(v, str):
            words = v.split()
            if len(words) == 2 and words[1].isascii() and words[1].isdigit():
                return {"host": words[0], "port": int(words[1])}
            if len(words) == 1:
                return {"host": words[0]}
            raise FieldProblem((), f"{v!r} is not `HOST [PORT]`", "write smtp_server: HOST, HOST PORT, or "
                               "{host: HOST, port: PORT}")
        return v

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        keepalived_word(v, "smtp_server")
        if ":" in v or v.replace(".", "").isdigit():
            return _check_any_ip(v)
        # keepalived takes a word with '-' or '/' as a name only; a name must be one DNS name
        if not all(part and part.replace("-", "").isalnum() for part in v.rstrip(".").split(".")):
            raise ValueError(f"{v!r} is neither an address nor a DNS name")
        return v


class LvsTimeouts(Strict):
    """IPVS connection timeouts (`ipvsadm --set`), written as keepalived's lvs_timeouts; 0 keeps the
    kernel's value."""
    tcp: int | None = Field(None, ge=0, le=LVS_MAX_TIMEOUT, description="Seconds an idle established TCP "
                            "connection stays in the IPVS table (kernel: 900).")
    tcpfin: int | None = Field(None, ge=0, le=LVS_MAX_TIMEOUT, description="Seconds a TCP connection stays after "
                               "its FIN (kernel: 120).")
    udp: int | None = Field(None, ge=0, le=LVS_MAX_TIMEOUT, description="Seconds a UDP flow stays after its last "
                            "packet (kernel: 300).")

    @model_validator(mode="after")
    def _one(self):
        if self.tcp is None and self.tcpfin is None and self.udp is None:
            raise FieldProblem((), "lvs_timeouts names no timeout (keepalived: \"requires at least one option\")",
                               "give tcp, tcpfin or udp, or drop lvs_timeouts")
        return self

    @property
    def words(self) -> str:
        return " ".join(f"{k} {v}" for k, v in (("tcp", self.tcp), ("tcpfin", self.tcpfin), ("udp", self.udp))
                        if v is not None)


def email_address(v: str) -> str:
    """An address keepalived puts in a mail header: one word, user@domain, or a local user alone
    (keepalived's own samples mail `acassen`: the relay delivers it locally)."""
    keepalived_word(v, "e-mail address")
    local, at, domain = v.rpartition("@")
    if any(c in v for c in "<>,;") or (at and (not local or "." not in domain.strip("."))):
        raise ValueError(f"{v!r} is not an e-mail address (user@example.org, or a local user)")
    return v


def fifo_path(v: str | None) -> str | None:
    """A FIFO keepalived creates (mkfifo) and writes state changes to: an absolute path, one word."""
    if v is None:
        return v
    keepalived_word(v, "notify_fifo")
    if not v.startswith("/") or v.endswith("/"):
        raise ValueError(f"{v!r} is not an absolute path to a file (e.g. /run/keepalived/notify.fifo)")
    return v


FIFOS = ("notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo")
GARP_LOWER_PRIO = ("vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat")


def problems(inv):
    """keepalived's rules between global_defs and the rest (each a FieldProblem)."""
    g = inv.global_defs
    loc = ("global_defs",)
    alerting = g.smtp_alert or any(vi.smtp_alert for vi in inv.vrrp_instances)
    if alerting and (g.smtp_server is None or not g.notification_email):
        lacking = "smtp_server" if g.smtp_server is None else "notification_email"
        where = loc + ("smtp_alert",) if g.smtp_alert else \
            ("vrrp_instances", next(i for i, vi in enumerate(inv.vrrp_instances) if vi.smtp_alert), "smtp_alert")
        yield FieldProblem(where, f"smtp_alert without global_defs.{lacking}: keepalived sends no mail",
                           f"set global_defs.{lacking}, or drop smtp_alert")
    for name in ("notification_email_from", "smtp_connect_timeout"):
        if getattr(g, name) is not None and g.smtp_server is None:
            yield FieldProblem(loc + (name,), f"{name} without smtp_server: keepalived sends no mail",
                               "set smtp_server, or drop it")
    seen: dict[str, str] = {}
    for fifo in FIFOS:
        path, script = getattr(g, fifo), getattr(g, fifo + "_script")
        if script is not None and path is None:
            yield FieldProblem(loc + (fifo + "_script",), f"{fifo}_script reads {fifo}, which is not set",
                               f"set {fifo}: PATH, or drop {fifo}_script")
        if path is not None and path in seen:
            yield FieldProblem(loc + (fifo,), f"{fifo} {path} is also {seen[path]}: keepalived ignores one of "
                               "them (\"has been specified for global and ... FIFO - ignoring\")",
                               "give each FIFO its own path")
        elif path is not None:
            seen[path] = fifo
    if g.lvs_notify_fifo is not None and not inv.virtual_servers:
        yield FieldProblem(loc + ("lvs_notify_fifo",), "lvs_notify_fifo carries virtual and real server events, "
                           "and there are no virtual_servers", "drop it, or use notify_fifo")
    if g.vrrp_strict:
        yield from strict_problems(inv)


def strict_problems(inv):
    """What keepalived's vrrp_strict (RFC 3768/5798 compliance) refuses or silently changes, from
    keepalived 2.2.7's vrrp_complete_instance: keepalived -t fails on the first two, resets the rest."""
    why = "under global_defs.vrrp_strict"
    for name in GARP_LOWER_PRIO:
        if getattr(inv.global_defs, name) is not None:
            yield FieldProblem(("global_defs", name), f"{name} is ignored {why} (keepalived sends no "
                               "lower-priority GARPs in strict mode)", f"drop {name}, or vrrp_strict")
    for k, n in enumerate(inv.nodes):
        if n.state == "MASTER":
            yield FieldProblem(("nodes", k, "state"), f"state MASTER {why} needs priority 255, the address owner "
                               "(keepalived: \"State MASTER must match being address owner\")",
                               "drop state: the highest priority becomes MASTER by election")
    for i, vi in enumerate(inv.vrrp_instances):
        loc = ("vrrp_instances", i)
        if vi.unicast:
            yield FieldProblem(loc + ("unicast",), f"unicast peers are refused {why} (keepalived: \"Unicast peers "
                               "are not supported in strict mode\")", "set unicast: false (multicast adverts), "
                               "or drop vrrp_strict")
        if vi.family == 6:
            yield FieldProblem(loc + ("virtual_ipaddress",), f"an IPv6 instance {why} must list a link-local "
                               "address first (keepalived: \"the first IPv6 VIP address must be link local\"), "
                               "and a VIP is never link-local", "drop vrrp_strict, or the IPv6 instance")
        if vi.authentication is not None:
            yield FieldProblem(loc + ("authentication",), f"authentication is ignored {why} (keepalived: "
                               "\"Strict mode does not support authentication\")",
                               "drop authentication, or vrrp_strict")
        if vi.preempt_delay is not None:
            yield FieldProblem(loc + ("preempt_delay",), f"preempt_delay is reset to 0 {why} (keepalived: "
                               "\"preempt_delay is incompatible with strict mode\")",
                               "drop preempt_delay, or vrrp_strict")
