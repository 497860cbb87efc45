#!/bin/bash
# The files fact (fabfile/infra/facts.py files()) as a real lab node prints it: GNU tar of the managed
# files that exist, base64 on one line. Needs the lab up and deployed (inv lab.up deploy).
# Writes tests/fixtures/lbtk/files_tar.txt (+ .paths: the paths asked for, one a line).
# keepalived.conf is left out: it holds the lab's VRRP secret.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python - <<'PY'
from pathlib import Path
import fabfile.lab.hooks  # noqa: F401 (the lab's inventory section, fabfile.model.extensions)
from fabfile.model.context import load_env
from fabfile.infra import facts as F, remote
from fabfile.core.render import managed_paths
e = load_env("lab")
node = e.inv.nodes[0]
paths = [p for p in managed_paths(e.inv, node.name, e.secrets) if p != "/etc/keepalived/keepalived.conf"]
paths.append("/etc/lbtk-not-there")
c = remote.connect(e.inv, node)
try:
    out = remote.run(c, F.files(paths).command).stdout
finally:
    c.close()
d = Path("tests/fixtures/lbtk")
d.mkdir(parents=True, exist_ok=True)
(d / "files_tar.txt").write_text(out)
(d / "files_tar.paths").write_text("".join(p + "\n" for p in paths))
print(f"captured {len(out)} bytes for {len(paths)} paths from {node.name}")
PY
