#!/bin/bash
# The Ansible side of the scale benchmark: its own virtualenv, bench/.venv-ansible, with the
# ansible-core pinned in bench/ansible/requirements.txt (kept apart from the toolkit's .venv so
# neither side's dependencies shape the other). Idempotent and silent when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-ansible
REQ=ansible/requirements.txt
STAMP=$VENV/.requirements     # the requirements last installed: unchanged means nothing to do
if [ -x $VENV/bin/ansible-playbook ] && cmp -s $REQ $STAMP; then
  exit 0
fi
[ -x $VENV/bin/python ] || python3 -m venv $VENV
$VENV/bin/python -m pip install -q --disable-pip-version-check -r $REQ
cp $REQ $STAMP
echo "bench/ansible/setup.sh: $($VENV/bin/ansible-playbook --version | head -1) in bench/$VENV"
