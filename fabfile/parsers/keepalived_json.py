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

from dataclasses import dataclass

from fabfile.parsers import ParseError, json_field, load_json

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


def _int(d: dict, key: str, what: str) -> int:
    return int(json_field(d, key, (int, float), what, default=0))    # load_json lets no NaN or Infinity in


def _seconds(d: dict, key: str, what: str) -> float:
    try:
        return float(json_field(d, key, (int, float), what, default=0))
    except OverflowError:     # a whole number past float's range
        raise ParseError(f"{what}: {key!r} is not a time") from None


def parse_keepalived_json(text: str) -> list[VrrpView] | None:
    """The fact's output -> one VrrpView per instance; None when keepalived is not running or has
    no JSON support."""
    word = text.strip()
    if word in (NOT_RUNNING, NO_JSON) or not word:
        return None
    try:
        data = load_json(word, "keepalived.json")
    except ParseError:
        # keepalived writes the file while we read it, or did not finish in time: the view is
        # auxiliary (verify's own checks do not depend on it), so it is "unavailable", not an error
        return None
    if not isinstance(data, list):
        raise ParseError(f"keepalived.json: expected a list, got {type(data).__name__}")
    out = []
    for i, item in enumerate(data):
        what = f"keepalived.json: entry {i}"
        if not isinstance(item, dict) or not isinstance(item.get("data"), dict) \
                or not isinstance(item.get("stats"), dict):
            raise ParseError(f"{what} lacks data/stats")
        d, s = item["data"], item["stats"]
        if not isinstance(d.get("iname"), str):
            raise ParseError(f"{what} has no instance name")
        st = _int(d, "state", what)
        out.append(VrrpView(
            instance=d["iname"], state=STATES.get(st, f"UNKNOWN({st})"),
            priority=_int(d, "effective_priority", what), base_priority=_int(d, "base_priority", what),
            vrid=_int(d, "vrid", what), interface=json_field(d, "ifp_ifname", str, what, default=""),
            last_transition=_seconds(d, "last_transition", what),
            advert_rcvd=_int(s, "advert_rcvd", what), advert_sent=_int(s, "advert_sent", what),
            become_master=_int(s, "become_master", what), release_master=_int(s, "release_master", what),
            auth_errors=sum(_int(s, k, what) for k in ("auth_failure", "authtype_mismatch", "invalid_authtype")),
            pri_zero_rcvd=_int(s, "pri_zero_rcvd", what), pri_zero_sent=_int(s, "pri_zero_sent", what),
            other_errors=sum(_int(s, k, what) for k in ("packet_len_err", "ip_ttl_err", "invalid_type_rcvd",
                                                        "addr_list_err", "advert_interval_err"))))
    return out


__all__ = ["VrrpView", "parse_keepalived_json", "STATES", "NOT_RUNNING", "NO_JSON"]
