#!/bin/bash
# The Ansible side of the scale benchmark: bench/.venv-ansible with the ansible-core pinned in
# bench/ansible/requirements.txt (bench/venv.sh).
exec bash "$(dirname "$0")/../venv.sh" .venv-ansible ansible/requirements.txt ansible-playbook
