#!/bin/bash
# A peer of the scale benchmark in its own virtualenv, with its release pinned in a requirements
# file (kept apart from the toolkit's .venv and from each other so no side's dependencies shape
# another's). Idempotent and silent when already done.
#   bash bench/venv.sh VENV REQUIREMENTS TOOL     e.g. .venv-pyinfra pyinfra/requirements.txt pyinfra
set -euo pipefail
cd "$(dirname "$0")"
VENV=$1
REQ=$2
TOOL=$3
STAMP=$VENV/.requirements     # the requirements last installed: unchanged means nothing to do
if [ -x "$VENV/bin/$TOOL" ] && cmp -s "$REQ" "$STAMP"; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
cp "$REQ" "$STAMP"
echo "bench/venv.sh: $(grep -v '^#' "$REQ" | tr -s '\n' ' ')in bench/$VENV"
