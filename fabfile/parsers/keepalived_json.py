"""keepalived's own view of its VRRP instances: the JSON it writes to /tmp/keepalived.json when sent
the signal `keepalived --signum=JSON` names (keepalived built with --enable-json: Debian 12's 2.2.7
is, see `keepalived -v`).

The file is a JSON list, one object per vrrp_instance: {"data": {...}, "stats": {...}}.
- data: iname, state (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT), effective_priority, base_priority,
  vrid, ifp_ifname, last_transition (seconds since the epoch, float), ...
- stats: advert_rcvd, advert_sent, become_master, release_master, packet_len_err, ip_ttl_err,
  invalid_type_rcvd, addr_list_err, invalid_authtype, authtype_mismatch, auth_failure,
  pri_zero_rcvd, pri_zero_sent, ...
Captured from the lab (scripts/capture-fixtures/keepalived_json.sh, tests/fixtures/keepalived_json/).

The fact prints NOT-RUNNING (no keepalived pid) or NO-JSON (keepalived refused the signal name)
instead: both are answers (None), not errors; so is a dump cut short (keepalived still writing).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from fabfile.parsers import ParseError, excerpt

STATES = {0: "INIT", 1: "BACKUP", 2: "MASTER", 3: "FAULT"}
NOT_RUNNING, NO_JSON = "NOT-RUNNING", "NO-JSON"


@dataclass(frozen=True)
class VrrpView:
    instance: str
    state: str                   # INIT | BACKUP | MASTER | FAULT | UNKNOWN(n)
    priority: int                # effective priority (after track_script weights)
    base_priority: int
    vrid: int
    interface: str
    last_transition: float       # epoch seconds; 0 if keepalived did not say
    advert_rcvd: int
    advert_sent: int
    become_master: int
    release_master: int
    auth_errors: int             # auth_failure + authtype_mismatch + invalid_authtype
    pri_zero_rcvd: int
    pri_zero_sent: int
    other_errors: int            # packet length, TTL, type, address list, interval errors

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _int(d: dict, key: str) -> int:
    v = d.get(key, 0)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ParseError(f"keepalived.json: {key} is not a number: {excerpt(repr(v))}")
    return int(v)


def parse_keepalived_json(text: str) -> list[VrrpView] | None:
    """The fact's output -> one VrrpView per instance; None when keepalived is not running or has
    no JSON support."""
    word = text.strip()
    if word in (NOT_RUNNING, NO_JSON) or not word:
        return None
    try:
        data = json.loads(word)
    except json.JSONDecodeError:
        # keepalived writes the file while we read it, or did not finish in time: the view is
        # auxiliary (verify's own checks do not depend on it), so it is "unavailable", not an error
        return None
    if not isinstance(data, list):
        raise ParseError(f"keepalived.json: expected a list, got {type(data).__name__}")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("data"), dict) \
                or not isinstance(item.get("stats"), dict):
            raise ParseError(f"keepalived.json: entry {i} lacks data/stats")
        d, s = item["data"], item["stats"]
        if not isinstance(d.get("iname"), str):
            raise ParseError(f"keepalived.json: entry {i} has no instance name")
        st = _int(d, "state")
        last = d.get("last_transition", 0)
        out.append(VrrpView(
            instance=d["iname"], state=STATES.get(st, f"UNKNOWN({st})"),
            priority=_int(d, "effective_priority"), base_priority=_int(d, "base_priority"),
            vrid=_int(d, "vrid"), interface=str(d.get("ifp_ifname", "")),
            last_transition=float(last) if isinstance(last, (int, float)) else 0.0,
            advert_rcvd=_int(s, "advert_rcvd"), advert_sent=_int(s, "advert_sent"),
            become_master=_int(s, "become_master"), release_master=_int(s, "release_master"),
            auth_errors=_int(s, "auth_failure") + _int(s, "authtype_mismatch") + _int(s, "invalid_authtype"),
            pri_zero_rcvd=_int(s, "pri_zero_rcvd"), pri_zero_sent=_int(s, "pri_zero_sent"),
            other_errors=sum(_int(s, k) for k in ("packet_len_err", "ip_ttl_err", "invalid_type_rcvd",
                                                   "addr_list_err", "advert_interval_err"))))
    return out


__all__ = ["VrrpView", "parse_keepalived_json", "STATES", "NOT_RUNNING", "NO_JSON"]
