#!/bin/bash
# The pyinfra side of the scale benchmark: its own virtualenv, bench/.venv-pyinfra, with the
# pyinfra pinned in bench/pyinfra/requirements.txt (kept apart from the toolkit's .venv and from
# bench/.venv-ansible so no side's dependencies shape another's). Idempotent and silent when done.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-pyinfra
REQ=pyinfra/requirements.txt
STAMP=$VENV/.requirements     # the requirements last installed: unchanged means nothing to do
if [ -x $VENV/bin/pyinfra ] && cmp -s $REQ $STAMP; then
  exit 0
fi
[ -x $VENV/bin/python ] || python3 -m venv $VENV
$VENV/bin/python -m pip install -q --disable-pip-version-check -r $REQ
cp $REQ $STAMP
echo "bench/pyinfra/setup.sh: pyinfra $($VENV/bin/python -c 'import importlib.metadata as m; print(m.version("pyinfra"))') in bench/$VENV"
