"""Run the real `keepalived -t` on rendered configs, on this machine (the inventory field behind
each thing it reports: fabfile/core/keepalived_fields.py).

keepalived warns (exit 5) about interfaces that do not exist, so each check runs in a
throwaway network namespace holding the node's interface names and address. No packet is
sent: keepalived -t only parses. The namespace and the temporary files are removed on every
path (a failure to build the namespace included).

The scripts the inventory's commands run (`scripts:`) are laid out as the nodes will have them,
in a private mount namespace: each path's nearest directory that exists here is overlaid (a
tmpfs upper layer, dropped with the namespace) and the file put in it, root's, mode 0755 — the
shipped ones with their content, the declared-present ones as a stub. That is the honest way:
keepalived then runs every check it runs on a node (found, executable, secure path,
script_security) against the layout deploy makes, rather than lbtk muting the messages it
guesses are about absent files (a muted "not found" would also hide a SECURITY VIOLATION the
node would report once the file is there). A path neither shipped nor declared is not laid out,
and keepalived reports it as on a node that lacks it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from fabfile.errors import LbtkError
from fabfile.model.schema import Inventory, Node
from fabfile.model.instance_options import named_interfaces
from fabfile.parsers.ip_addr import batch_failure
from fabfile.parsers.lbtk import last_line
from fabfile.parsers.keepalived_t import KeepalivedCheck, parse_keepalived_check


class ToolMissing(LbtkError):
    pass


def keepalived_check(inv: Inventory, node: Node, conf_text: str, scripts: dict[str, str] | None = None,
                     root: Path | None = None) -> KeepalivedCheck:
    """`keepalived -t` of this machine on conf_text. `scripts`: {node path: text} the nodes will
    hold (fabfile.core.render.scripts.stand_ins), laid out only as root (a mount namespace), like
    the network namespace. `root`: the keepalived of that Debian root file system instead (the
    lab's trixie base: keepalived 2.3.3), run chrooted with the config bind-mounted on its /mnt in
    a mount namespace of its own, so the root is never written (the scripts go under it)."""
    if root is not None and scripts:
        scripts = {f"{root}{p}": t for p, t in scripts.items()}
    exe = shutil.which("keepalived") or "/usr/sbin/keepalived"
    if root is not None:
        exe = str(root / "usr/sbin/keepalived")
    if not os.path.exists(exe):
        raise ToolMissing("keepalived is not installed here — run scripts/setup.sh")
    with tempfile.TemporaryDirectory(prefix="lbtk-check-") as d:
        conf = Path(d) / "keepalived.conf"
        conf.write_text(conf_text)
        cmd = [exe, "-t", "-f", str(conf)]
        if root is not None:
            # the binary must run as itself inside its root: keepalived 2.3 reads its own build
            # options through /proc/self/exe, which a loader trick (ld.so --library-path) breaks
            cmd = ["unshare", "-m", "sh", "-c", 'mount --bind "$1" "$2/mnt" && exec chroot "$2" keepalived -t '
                   '-f /mnt/keepalived.conf', "sh", d, str(root)]
        ns = f"lbtk-chk{os.getpid()}"
        use_ns = os.geteuid() == 0 and shutil.which("ip") is not None
        try:
            if use_ns and scripts:
                cmd = _with_scripts(Path(d), scripts, cmd)
            if use_ns:
                _make_netns(ns, inv, node)
                cmd = ["ip", "netns", "exec", ns] + cmd
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except subprocess.CalledProcessError as e:
            err = last_line((e.stderr or b"").decode(errors="replace"), "failed")
            raise LbtkError(f"{node.name}: could not build the check's network namespace "
                            f"(`{' '.join(e.cmd)}`: {err})") from None
        except subprocess.TimeoutExpired:
            raise LbtkError(f"{node.name}: keepalived -t did not finish within 30 s") from None
        finally:
            if use_ns:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shown = "/mnt/keepalived.conf" if root is not None else str(conf)
        return parse_keepalived_check(r.stdout.replace(shown, "keepalived.conf"),
                                      r.stderr.replace(shown, "keepalived.conf"), r.returncode)


# Run in its own mount namespace (unshare -m, propagation private: nothing mounted reaches this
# machine's tree): ARGS are LAYERS, the directories to overlay, --, (source, path) pairs, --, the
# command. Each directory gets an overlay whose upper layer is on a tmpfs, gone with the namespace.
_LAYOUT = r"""
set -e
umask 022
layers=$1; shift
mount -t tmpfs lbtk-check "$layers"
i=0
while [ "$1" != -- ]; do
    i=$((i + 1)); mkdir "$layers/u$i" "$layers/w$i"
    mount -t overlay lbtk-check -o "lowerdir=$1,upperdir=$layers/u$i,workdir=$layers/w$i" "$1"
    shift
done
shift
while [ "$1" != -- ]; do
    install -D -m 0755 -o root -g root "$1" "$2"; shift 2
done
shift
exec "$@"
"""


def _with_scripts(work: Path, scripts: dict[str, str], cmd: list[str]) -> list[str]:
    """`cmd` run with `scripts` laid out at their node paths (root's, 0755), in a mount namespace."""
    (work / "layers").mkdir()
    pairs = []
    for k, (path, text) in enumerate(sorted(scripts.items())):
        src = work / f"script{k}"
        src.write_text(text)
        pairs += [str(src), path]
    dirs = sorted({_existing_dir(p) for p in scripts})
    outer = [d for d in dirs if not any(d.startswith(o + "/") for o in dirs)]   # one overlay covers below it
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _LAYOUT, "lbtk-check",
            str(work / "layers"), *outer, "--", *pairs, "--", *cmd]


def _existing_dir(path: str) -> str:
    """The nearest directory above `path` that exists on this machine (the one to overlay)."""
    d = os.path.dirname(path)
    while d != "/" and not os.path.isdir(d):
        d = os.path.dirname(d)
    if d == "/":
        raise LbtkError(f"cannot lay out {path} for keepalived -t: {path.split('/')[1]!r} is not a directory "
                        "on this machine (the check overlays an existing one)")
    return d


def _make_netns(ns: str, inv: Inventory, node: Node) -> None:
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    ifaces = {inv.interface_of(node, vi) for vi in inv.vrrp_instances} | {inv.interface_of(node)} \
        | set(node.interfaces)
    if inv.sync_daemon:
        ifaces.add(inv.sync_daemon.interface)
    ifaces |= named_interfaces(inv, node)  # routes, rules, static addresses
    ifaces |= {t.name for vi in inv.vrrp_instances for t in vi.track_interface}   # else: "doesn't exist"
    for vi in inv.vrrp_instances:          # a VIP's `dev X` names an interface too
        for spec in vi.virtual_ipaddress:
            words = spec.split()
            if "dev" in words[1:-1]:
                ifaces.add(words[words.index("dev") + 1])
    # one `ip -batch` for every link and address: a check costs three processes, not two per interface
    lines = []
    for i, name in enumerate(sorted(ifaces)):
        # veth, not dummy: this host's kernel has no dummy driver
        # `name X`, `dev X`: an interface called "a" or "up" is not read as an ip keyword
        lines += [f"link add name {name} type veth peer name lbtkp{i}", f"link set dev {name} up"]
    for family, ip in sorted(node.ips.items()):     # a dual-stack node's IPv6 address too
        net = node.network_of(family)
        lines.append(f"addr add {ip}/{net.prefixlen} dev {inv.interface_of(node)}" + (" nodad" if family == 6 else ""))
    for name, entry in sorted(node.interfaces.items()):   # the node's other networks
        for family, ip in sorted(entry.ips.items()):
            lines.append(f"addr add {ip}/{entry.network_of(family).prefixlen} dev {name}"
                         + (" nodad" if family == 6 else ""))
    r = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n", capture_output=True,
                       text=True)
    if r.returncode != 0:
        at, reason = batch_failure(r.stderr)
        line = lines[at - 1] if at and at <= len(lines) else "-batch"
        raise subprocess.CalledProcessError(r.returncode, ["ip", "-n", ns, *line.split()], stderr=reason.encode())
