"""Prometheus's HTTP API: the answer of `GET /api/v1/alerts`, every alert pending or firing in it.

Every answer is an envelope: {"status": "success", "data": ...} or {"status": "error", "errorType":
..., "error": ...} (with an HTTP error status). The alerts' data: {"alerts": [{"labels": {...},
"annotations": {...}, "state": "pending" | "firing", "activeAt": RFC 3339 with nanoseconds,
"value": the expression's value as text}, ...]}.
Captured from a real Prometheus 2.42 (tests/fixtures/prometheus/, its README says how).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fabfile.parsers import ParseError, excerpt, json_field, load_json

STATES = ("firing", "pending")
WHAT = "Prometheus's /api/v1/alerts"


@dataclass(frozen=True)
class Alert:
    name: str                                   # the alertname label
    state: str                                  # firing | pending
    labels: dict[str, str] = field(default_factory=dict)        # every label but alertname
    annotations: dict[str, str] = field(default_factory=dict)
    active_at: float | None = None              # since when (epoch seconds; None: Prometheus did not say)
    value: str = ""                             # the rule expression's value, as Prometheus writes it

    def label(self, name: str) -> str | None:
        return self.labels.get(name)


def data_of(text: str, what: str = WHAT):
    """The envelope's data; an error envelope is a ParseError carrying Prometheus's own words."""
    doc = load_json(text, what)
    status = json_field(doc, "status", str, what)
    if status == "error":
        kind = json_field(doc, "errorType", str, what, "")
        raise ParseError(f"{what}: Prometheus answered an error{' (' + kind + ')' if kind else ''}: "
                         f"{json_field(doc, 'error', str, what, '')}")
    if status != "success":
        raise ParseError(f"{what}: status {excerpt(status)}, neither success nor error")
    return json_field(doc, "data", (dict, list), what)


def _strings(obj, key: str, what: str) -> dict[str, str]:
    value = json_field(obj, key, dict, what, {})
    bad = [k for k, v in value.items() if not isinstance(v, str)]
    if bad:
        raise ParseError(f"{what}: {key} {excerpt(bad[0])} is not text")
    return dict(value)


def _time(text: str, what: str) -> float | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ParseError(f"{what}: activeAt {excerpt(text)} is not an RFC 3339 time") from None
    return None if t.year <= 1 else t.timestamp()      # Go's zero time: never active


def parse_alerts(text: str) -> list[Alert]:
    """`GET /api/v1/alerts` -> every alert pending or firing, in Prometheus's order."""
    alerts = json_field(data_of(text), "alerts", list, WHAT)
    out = []
    for i, a in enumerate(alerts):
        what = f"{WHAT}: alert {i}"
        labels = _strings(a, "labels", what)
        name = labels.pop("alertname", None)
        if not name:
            raise ParseError(f"{what}: no alertname label")
        state = json_field(a, "state", str, what)
        if state not in STATES + ("inactive",):
            raise ParseError(f"{what}: state {excerpt(state)} is none of firing, pending, inactive")
        out.append(Alert(name, state, labels, _strings(a, "annotations", what),
                         _time(json_field(a, "activeAt", str, what, ""), what), json_field(a, "value", str, what, "")))
    return out


__all__ = ["Alert", "STATES", "data_of", "parse_alerts"]
