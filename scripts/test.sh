#!/bin/bash
# The test command (README, .ci/run): install what the tests need, then run them all.
# The lab tests bring the lab up and down themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "$@"
exec .venv/bin/python -m pytest -ra "${PYTEST_ARGS:--q}"
