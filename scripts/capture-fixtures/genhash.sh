#!/bin/bash
# Capture keepalived's genhash (the digest HTTP_GET compares) as the GENHASH fact runs it
# (fabfile/infra/facts.py: a frame line, then `genhash -v ... | awk DROP_BODY`), on a director of the
# running, deployed lab (inv lab.up && inv deploy --env lab), into tests/fixtures/genhash/:
# every real server's /healthz, a page, a 404, a refused port, an unanswered address, a bad
# argument, and genhash's plain (no -v) output. Nothing on the lab is changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=tests/fixtures/genhash
PY=${PY:-.venv/bin/python}
mkdir -p $OUT
cap() {  # cap NAME 'PYTHON LIST OF (address, port, path, timeout)' [plain]
  $PY - "$2" "${3:-}" > "$OUT/$1.txt" <<'PY'
import ast, shlex, sys
from fabfile.infra import facts as F, remote
import fabfile.lab.hooks  # noqa: F401 (the lab's inventory section, fabfile.model.extensions)
from fabfile.model.context import load_env
from fabfile.parsers.genhash import MARK
e = load_env("lab")
targets = ast.literal_eval(sys.argv[1])
if sys.argv[2] == "plain":   # genhash as its manual shows it, no -v (the frame line is ours)
    cmd = "; ".join(f"printf '{MARK} %s %s %s\\n' {a} {p} {shlex.quote(u)}; genhash -s {a} -p {p} -u {shlex.quote(u)}"
                    for a, p, u, t in targets)
else:
    cmd = F.genhash(targets).command
c = remote.connect(e.inv, e.inv.node("node1"))
print(remote.run(c, cmd, check=False).stdout, end="")
PY
  echo "captured $OUT/$1.txt"
}
cap healthz_all "[('10.189.0.11', 80, '/healthz', 3), ('10.189.0.12', 80, '/healthz', 3), ('10.189.0.13', 80, '/healthz', 3)]"
cap page_node2 "[('10.189.0.12', 80, '/', 3)]"
cap not_found "[('10.189.0.12', 80, '/no-such-page', 3)]"
cap refused "[('10.189.0.12', 81, '/healthz', 3)]"
cap timeout "[('10.189.0.99', 80, '/healthz', 1)]"
cap bad_address "[('lb9', 80, '/healthz', 3)]"
cap plain "[('10.189.0.12', 80, '/healthz', 3), ('10.189.0.12', 81, '/healthz', 3)]" plain
