#!/bin/bash
# Capture /etc/os-release of each Debian release the lab builds, by the fact's own command
# (fabfile/infra/facts.py OS_RELEASE) run in that release's base rootfs (chroot, read only):
# tests/fixtures/os_release/<release>.txt. Needs the bases (`inv lab.up`, `inv lab.up --env lab-trixie`).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
LAB=${LBTK_LAB_DIR:-/var/tmp/lbtk-lab}
CMD=$($PY -c 'from fabfile.infra import facts; print(facts.OS_RELEASE.command)')
for r in bookworm trixie; do
  base=$LAB/base; [ $r = bookworm ] || base=$LAB/base-$r
  chroot "$base" sh -c "$CMD" > tests/fixtures/os_release/$r.txt
  echo "captured tests/fixtures/os_release/$r.txt"
done
