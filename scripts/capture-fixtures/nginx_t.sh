#!/bin/bash
# Capture `nginx -t -q` (the deploy's nginx-test action) and the NGINX_DEFAULTS fact (every
# `listen ... default_server` in conf.d/ and sites-enabled/) on node3 of the running, deployed lab,
# healthy and with an operator's site that also claims default_server on :80: Debian's own
# `default` (sorts before lbtk.conf) and the same file as `zz-shop` (sorts after it). The extra
# site is a symlink that lives for one nginx -t: nginx is never reloaded, nothing it serves changes.
# Into tests/fixtures/nginx_t/: NAME.txt = stdout, NAME.stderr, NAME.rc (if not 0).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=tests/fixtures/nginx_t
PY=${PY:-.venv/bin/python}
mkdir -p $OUT
$PY - "$OUT" <<'PY'
import sys
from pathlib import Path
from fabfile.infra import facts as F, remote
from fabfile.core.actions import Action
import fabfile.lab.hooks  # noqa: F401 (the lab's inventory section, fabfile.model.extensions)
from fabfile.model.context import load_env
out = Path(sys.argv[1])
e = load_env("lab")
c = remote.connect(e.inv, e.inv.node("node3"))
test = Action("nginx-test").shell()


def cap(name, cmd):
    r = remote.run(c, cmd, check=False)
    (out / f"{name}.txt").write_text(r.stdout)
    for suffix, text in ((".stderr", r.stderr), (".rc", f"{r.exited}\n" if r.exited else "")):
        p = out / f"{name}{suffix}"
        p.write_text(text) if text else p.unlink(missing_ok=True)
    print(f"captured {out / name} (rc={r.exited})")


cap("test_ok", test)
cap("defaults_ok", F.NGINX_DEFAULTS.command)
for site in ("default", "zz-shop"):
    link = f"/etc/nginx/sites-enabled/{site}"
    remote.run(c, f"ln -sfn /etc/nginx/sites-available/default {link}")
    try:
        cap(f"test_duplicate_{site}", test)
        cap(f"defaults_duplicate_{site}", F.NGINX_DEFAULTS.command)
    finally:
        remote.run(c, f"rm -f {link}")
PY
