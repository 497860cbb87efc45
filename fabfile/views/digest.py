"""`inv digest`'s table: the live page digest per URL, against the inventory's HTTP_GET.digest."""
from __future__ import annotations

from fabfile import output


def show(rows: list[dict], fmt=None) -> None:
    via = rows[0]["via"] if rows else "?"
    t = output.Table(f"HTTP_GET digest (keepalived's genhash on {via})",
                     ["real server", "node", "port", "path", "status", "digest", "inventory", "matches"])
    for r in rows:
        status = f"{r['status']} {r['reason']}".strip() if r["status"] is not None else (r["error"] or "-")
        matches = "-" if r["matches"] is None else ("yes" if r["matches"] else "NO")
        t.add(r["server"], r["node"] or "-", r["port"], r["path"], status, r["digest"] or "-",
              r["inventory_digest"] or "-", matches, ok=r["ok"])
    output.show(t, fmt)
    for r in rows:
        if r["digest"] is None:
            continue
        if r["status"] is not None and not r["ok"] and r["matches"] is not False:
            output.say(f"warning: {r['server']}:{r['port']}{r['path']} answers HTTP {r['status']}: keepalived's "
                       "HTTP_GET fails it whatever the digest (it wants status_code, else any 2xx)")
            continue      # no digest worth putting in an inventory
        output.say(f"inventory: HTTP_GET: {{path: {r['path']}, digest: {r['digest']}}}   "
                   f"# real server {r['node'] or r['server']}")
