"""Node facts: what a node has now, gathered in ONE round trip and parsed into `NodeFacts`.

The probe is the toolkit's own small shell script (its output format is ours, so its parser
lives here beside it). Facts drive the plan: which files differ, whether the kernel has
IPVS, which services must start rather than reload.
"""
from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass, field

from .parsers.ip_addr import parse_ip_addr

PACKAGES = ("keepalived", "ipvsadm", "nginx", "nginx-light", "nginx-core", "iptables", "iproute2")
UNITS = ("keepalived", "nginx", "lbtk-vip-lo", "lbtk-fwmark")
MARK = "@@lbtk"
PENDING = "/var/lib/lbtk/pending"   # actions of a swap whose reloads have not all run yet


@dataclass(frozen=True)
class LiveFile:
    mode: int
    content: bytes


@dataclass
class NodeFacts:
    packages: dict[str, str] = field(default_factory=dict)        # name -> version (installed only)
    ipvs: bool = False
    active: dict[str, str] = field(default_factory=dict)          # unit -> is-active word
    enabled: dict[str, str] = field(default_factory=dict)         # unit -> is-enabled word
    files: dict[str, LiveFile | None] = field(default_factory=dict)
    kernel: str = ""
    binaries: set[str] = field(default_factory=set)               # on PATH: keepalived, nginx, ...
    vips: set[str] = field(default_factory=set)                   # IPv4 addresses on non-lo interfaces
    pending: list[str] = field(default_factory=list)              # actions an interrupted deploy left

    def has(self, pkg: str) -> bool:
        return pkg in self.packages

    @property
    def nginx_installed(self) -> bool:
        return any(p in self.packages for p in ("nginx", "nginx-light", "nginx-core"))


def probe_script(paths: list[str]) -> str:
    """Shell run on the node: packages, IPVS, unit states, and the managed files' bytes."""
    q = " ".join(shlex.quote(p) for p in paths)
    units = " ".join(UNITS)
    return f"""
echo '{MARK} kernel'; uname -r
echo '{MARK} pkg'; dpkg-query -W -f='${{Package}}\\t${{Version}}\\t${{db:Status-Abbrev}}\\n' {' '.join(PACKAGES)} 2>/dev/null
echo '{MARK} ipvs'; if [ -e /proc/net/ip_vs ] || {{ modprobe -q ip_vs 2>/dev/null && [ -e /proc/net/ip_vs ]; }}; then echo yes; else echo no; fi
echo '{MARK} bins'; for b in keepalived nginx ipvsadm iptables; do command -v $b >/dev/null 2>&1 && echo $b; done
echo '{MARK} addr'; ip -j -4 addr show
echo '{MARK} pending'; cat {PENDING} 2>/dev/null
echo '{MARK} units'
for u in {units}; do printf '%s %s %s\\n' "$u" "$(systemctl is-active "$u" 2>/dev/null)" "$(systemctl is-enabled "$u" 2>/dev/null || true)"; done
for p in {q}; do
  echo "{MARK} file $p"
  if [ -f "$p" ]; then stat -c '%a' "$p"; base64 -w0 < "$p"; echo; else echo MISSING; fi
done
true
"""


def parse_probe(text: str) -> NodeFacts:
    f = NodeFacts()
    for section in text.split(MARK + " ")[1:]:
        head, _, body = section.partition("\n")
        lines = body.rstrip("\n").split("\n") if body.strip() else []
        if head == "kernel":
            f.kernel = lines[0] if lines else ""
        elif head == "pkg":
            for ln in lines:
                name, version, status = (ln.split("\t") + ["", ""])[:3]
                if status.startswith("ii"):
                    f.packages[name] = version
        elif head == "bins":
            f.binaries = {ln.strip() for ln in lines if ln.strip()}
        elif head == "addr":
            f.vips = {a.local for i in parse_ip_addr("\n".join(lines) or "[]") if i.name != "lo"
                      for a in i.addresses}
        elif head == "pending":
            f.pending = [ln for ln in lines if ln.strip()]
        elif head == "ipvs":
            f.ipvs = bool(lines) and lines[0].strip() == "yes"
        elif head == "units":
            for ln in lines:
                parts = ln.split()
                if parts:
                    f.active[parts[0]] = parts[1] if len(parts) > 1 else "unknown"
                    f.enabled[parts[0]] = parts[2] if len(parts) > 2 else "not-found"
        elif head.startswith("file "):
            path = head[5:]
            if not lines or lines[0] == "MISSING":
                f.files[path] = None
            else:
                f.files[path] = LiveFile(int(lines[0], 8), base64.b64decode(lines[1] if len(lines) > 1 else ""))
    return f
