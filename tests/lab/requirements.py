"""What the lab tests need on this machine (one place for both lab shapes)."""
from __future__ import annotations

import os
import shutil

TOOLS = ("systemd-nspawn", "debootstrap", "ip", "nsenter", "ssh", "ssh-keygen")


def missing_for_lab() -> str | None:
    """Why the lab tests cannot run here (no root, a tool missing), or None."""
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces, mounts, systemd-nspawn)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"lab tests need {', '.join(missing)} (run scripts/setup.sh)"
    return None
