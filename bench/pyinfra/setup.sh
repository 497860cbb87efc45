#!/bin/bash
# The pyinfra side of the scale benchmark: bench/.venv-pyinfra with the pyinfra pinned in
# bench/pyinfra/requirements.txt (bench/venv.sh).
exec bash "$(dirname "$0")/../venv.sh" .venv-pyinfra pyinfra/requirements.txt pyinfra
