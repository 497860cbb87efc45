#!/bin/bash
# The test command (README, .ci/run): install what the tests need, then run them all, the kernel
# tier (real IPVS under qemu) included. LBTK_KERNEL_TESTS=0 runs only the plain tier (and skips
# installing qemu and Debian's kernel). The lab tests bring their labs up and down themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
export LBTK_KERNEL_TESTS=${LBTK_KERNEL_TESTS:-1}
if [ "$LBTK_KERNEL_TESTS" = 1 ]; then
  bash scripts/setup.sh --kernel
else
  bash scripts/setup.sh
fi
# Compiled test modules and pytest's rewritten asserts are cached (__pycache__, gitignored): an
# environment that forbids bytecode makes every run, and every `inv` a test starts, compile again.
unset PYTHONDONTWRITEBYTECODE
# the unit tier on both cores (pytest-xdist),
# then the tiers that share the lab, one test at a time
.venv/bin/python -m pytest -ra -q -m unit -n "${LBTK_UNIT_WORKERS:-2}"
exec .venv/bin/python -m pytest -ra "${PYTEST_ARGS:--q}" -m "not unit"
