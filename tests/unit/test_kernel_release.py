"""The kernel tier on Debian 13's kernel as well as Debian 12's (issue 16): lab.kernel picks the kernel
(true: bookworm's, a release name: that release's), each kernel unpacked in its own tree with its own
initramfs, and compressed modules (trixie's are .ko.xz) decompressed into the initramfs."""
from __future__ import annotations

import gzip
import lzma
import shutil
import subprocess
from pathlib import Path

import pytest

from fabfile.model.loading import load
from fabfile.lab import LabError, kernel

ROOT = Path(__file__).resolve().parents[2]


def test_lab_kernel_picks_the_release():
    assert load("kernel")[0].lab.kernel_release == "bookworm"          # kernel: true, as before
    assert load("kernel-trixie")[0].lab.kernel_release == "trixie"
    assert load("lab")[0].lab.kernel_release is None


def test_kernel_trixie_is_the_kernel_inventory_on_another_kernel(monkeypatch):
    """Same VM, nodes, VIP and secret: Debian 13 throughout (its kernel, its nodes) is the only difference,
    so the tests deploy kernel-wrr / kernel-nat onto either."""
    from fabfile.lab.hooks import spec_for
    monkeypatch.chdir(ROOT)
    b, t = spec_for("kernel"), spec_for("kernel-trixie")
    assert (b.release, t.release) == ("bookworm", "trixie")
    assert b.client == t.client and b.kernel_dir == t.kernel_dir
    assert {n.release for n in b.lab.nodes} == {"bookworm"} and {n.release for n in t.lab.nodes} == {"trixie"}
    assert [(n.name, n.host, n.mac) for n in b.lab.nodes] == [(n.name, n.host, n.mac) for n in t.lab.nodes]
    assert (b.lab.bridge, b.lab.gateway) == (t.lab.bridge, t.lab.gateway)
    ib, it = load("kernel")[0], load("kernel-trixie")[0]
    assert ib.model_dump(exclude={"lab"}) == it.model_dump(exclude={"lab"})
    assert ib.lab.model_dump(exclude={"kernel", "release"}) == it.lab.model_dump(exclude={"kernel", "release"})


def test_each_release_has_its_own_tree_and_initramfs():
    """bookworm's stay where clones before releases put them (kernel/, initrd.gz)."""
    k = Path("/k")
    assert kernel.kernel_tree(k) == kernel.kernel_tree(k, "bookworm") == Path("/k/kernel")
    assert kernel.kernel_tree(k, "trixie") == Path("/k/kernel-trixie")
    assert kernel.initrd_paths(k) == (Path("/k/initrd.gz"), Path("/k/initrd.stamp"))
    assert kernel.initrd_paths(k, "trixie") == (Path("/k/initrd-trixie.gz"), Path("/k/initrd-trixie.stamp"))


def _tree(root: Path, kver: str, moddir: str, modules: dict[str, bytes], dep: str) -> Path:
    (root / "boot").mkdir(parents=True)
    (root / "boot" / f"vmlinuz-{kver}").write_bytes(b"kernel")
    mods = root / moddir / kver
    mods.mkdir(parents=True)
    for rel, data in modules.items():
        (mods / rel).parent.mkdir(parents=True, exist_ok=True)
        (mods / rel).write_bytes(data)
    (mods / "modules.dep").write_text(dep)
    return mods


def test_installed_kernel_finds_merged_usr_modules(tmp_path):
    _tree(tmp_path / "kernel", "6.1.0-9-amd64", "lib/modules", {}, "")
    mods = _tree(tmp_path / "kernel-trixie", "6.12.9+deb13-amd64", "usr/lib/modules", {}, "")
    assert kernel.installed_kernel(tmp_path)[0] == "6.1.0-9-amd64"
    assert kernel.installed_kernel(tmp_path, "trixie") == (
        "6.12.9+deb13-amd64", tmp_path / "kernel-trixie/boot/vmlinuz-6.12.9+deb13-amd64", mods)
    shutil.rmtree(tmp_path / "kernel-trixie")
    with pytest.raises(LabError, match=r"not set up for trixie's kernel .*kernel-trixie.*setup.sh --kernel"):
        kernel.installed_kernel(tmp_path, "trixie")


def test_initrd_module_plan():
    files = ["kernel/fs/netfs/netfs.ko.xz", "kernel/net/9p/9pnet.ko", "kernel/fs/9p/9p.ko.gz",
             "kernel/fs/overlayfs/overlay.ko.zst"]
    assert kernel.initrd_modules(files) == [
        ("kernel/fs/netfs/netfs.ko.xz", "netfs.ko", "xz"), ("kernel/net/9p/9pnet.ko", "9pnet.ko", None),
        ("kernel/fs/9p/9p.ko.gz", "9p.ko", "gz"), ("kernel/fs/overlayfs/overlay.ko.zst", "overlay.ko", "zst")]
    with pytest.raises(LabError, match=r"kernel/x/y\.ko\.bz2: neither \.ko nor one of \.ko\.xz, \.ko\.gz, \.ko\.zst"):
        kernel.initrd_modules(["kernel/x/y.ko.bz2"])


def test_plain_module_decompresses(tmp_path):
    data = bytes(range(256)) * 40
    for name, blob, codec in (("a.ko", data, None), ("a.ko.xz", lzma.compress(data, format=lzma.FORMAT_XZ), "xz"),
                              ("a.ko.gz", gzip.compress(data), "gz")):
        (tmp_path / name).write_bytes(blob)
        assert kernel._plain_module(tmp_path / name, codec) == data
    if shutil.which("zstd"):
        subprocess.run(["zstd", "-q", "-o", str(tmp_path / "a.ko.zst"), str(tmp_path / "a.ko")], check=True)
        assert kernel._plain_module(tmp_path / "a.ko.zst", "zst") == data


def _cpio_newc(blob: bytes) -> dict[str, bytes]:
    """name -> data of a newc cpio archive (the initramfs format)."""
    out, i = {}, 0
    while True:
        h = blob[i:i + 110]
        assert h[:6] == b"070701", h[:6]
        size, namesize = int(h[54:62], 16), int(h[94:102], 16)
        name = blob[i + 110:i + 110 + namesize - 1].decode()
        i = (i + 110 + namesize + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out[name] = blob[i:i + size]
        i = (i + size + 3) & ~3


@pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="busybox (scripts/setup.sh --kernel) builds initramfs")
def test_initramfs_of_a_compressed_module_kernel(tmp_path, monkeypatch):
    """trixie's layout: usr/lib/modules, every module .ko.xz; the initramfs holds them plain, in
    dependency order, and tells init where the guest's modules dir is; bookworm's initrd is untouched."""
    monkeypatch.setenv("LBTK_KERNEL_DIR", str(tmp_path))
    kver = "6.12.9+deb13-amd64"
    raw = {n: f"\x7fELF {n}".encode() * 50 for n in ("netfs", "9pnet", "9pnet_virtio", "9p", "overlay")}
    paths = {"netfs": "kernel/fs/netfs/netfs.ko.xz", "9pnet": "kernel/net/9p/9pnet.ko.xz",
             "9pnet_virtio": "kernel/net/9p/9pnet_virtio.ko.xz", "9p": "kernel/fs/9p/9p.ko.xz",
             "overlay": "kernel/fs/overlayfs/overlay.ko.xz"}
    dep = (f"{paths['netfs']}:\n{paths['9pnet']}:\n{paths['9pnet_virtio']}: {paths['9pnet']}\n"
           f"{paths['9p']}: {paths['netfs']} {paths['9pnet']}\n{paths['overlay']}:\n")
    mods = _tree(tmp_path / "kernel-trixie", kver, "usr/lib/modules",
                 {paths[n]: lzma.compress(raw[n]) for n in raw}, dep)
    (mods / "modules.builtin").write_text("kernel/drivers/virtio/virtio_pci.ko\n")
    out = kernel.build_initrd(progress=lambda s: None, release="trixie")
    assert out == tmp_path / "initrd-trixie.gz" and not (tmp_path / "initrd.gz").exists()
    files = _cpio_newc(gzip.decompress(out.read_bytes()))
    order = files["mods/order"].decode().split()
    assert order == ["9pnet", "9pnet_virtio", "netfs", "9p", "overlay"]
    assert all(files[f"mods/{n}.ko"] == raw[n] for n in raw)
    assert files["moddir"].decode().strip() == str(mods)
    assert files["init"] == (kernel.GUEST_DIR / "init").read_bytes()
    mtime = out.stat().st_mtime_ns
    assert kernel.build_initrd(progress=lambda s: None, release="trixie") == out and out.stat().st_mtime_ns == mtime


def test_tested_kernels(monkeypatch):
    from tests.kernel.conftest import tested_kernels
    monkeypatch.delenv("LBTK_KERNEL_RELEASES", raising=False)
    assert tested_kernels(False) == ["bookworm"] and tested_kernels(True) == ["bookworm", "trixie"]
    monkeypatch.setenv("LBTK_KERNEL_RELEASES", "bookworm")
    assert tested_kernels(True) == ["bookworm"]



def test_share_tells_the_guest_each_node_release_and_base(tmp_path):
    """The host's spec.json and the guest's reading of it (fabfile/lab/guest/nodes.py) agree: each
    node keeps its release, and the guest gets the host's base and stamp of every release in use."""
    from fabfile.lab import LabNode, LabSpec, rootfs
    from fabfile.lab.guest import nodes as guest
    lab_nodes = (LabNode("node1", "10.189.0.131", "02:bd:00:00:01:31", "trixie"),
                 LabNode("node2", "10.189.0.132", "02:bd:00:00:01:32"))
    ks = kernel.KernelSpec(LabSpec(nodes=lab_nodes, bridge="lbtk-kbr0", gateway="10.189.0.129/25"),
                           tmp_path / "k", "10.189.0.140", "trixie")
    base_lab = LabSpec(nodes=lab_nodes, lab_dir=tmp_path / "lab")
    kernel._write_share(ks, base_lab, tmp_path / "k/id_ed25519")
    s, spec = guest._spec(ks.share)
    assert spec.nodes == lab_nodes and spec.lab_dir == guest.GUEST_LAB_DIR
    assert s["bases"] == {"bookworm": {"base": str(tmp_path / "lab/base"), "stamp": str(tmp_path / "lab/base.stamp")},
                          "trixie": {"base": str(tmp_path / "lab/base-trixie"),
                                     "stamp": str(tmp_path / "lab/base-trixie.stamp")}}
    assert [rootfs.base_dir(spec, r).name for r in s["bases"]] == ["base", "base-trixie"]


def test_a_vm_booted_otherwise_is_restarted(tmp_path):
    """up() keeps a running VM only if it booted the same kernel with nodes of the same releases."""
    from fabfile.lab import LabNode, LabSpec
    nodes = (LabNode("node1", "10.189.0.131"), LabNode("node2", "10.189.0.132"))
    ks = kernel.KernelSpec(LabSpec(nodes=nodes, bridge="lbtk-kbr0", gateway="10.189.0.129/25"), tmp_path)
    ks.pidfile.write_text('{"pid": 1, "start": 2}\n')                 # a record from before kernels
    assert kernel.other_boot(ks, "6.1.0-9-amd64") is None
    ks.pidfile.write_text('{"pid": 1, "start": 2, "kver": "6.1.0-9-amd64", '
                          '"releases": {"node1": "bookworm", "node2": "bookworm"}}\n')
    assert kernel.other_boot(ks, "6.1.0-9-amd64") is None
    assert kernel.other_boot(ks, "6.12.9+deb13-amd64") == "boots 6.1.0-9-amd64, not 6.12.9+deb13-amd64"
    tks = kernel.KernelSpec(LabSpec(nodes=(nodes[0], LabNode("node2", "10.189.0.132", release="trixie")),
                                    bridge="lbtk-kbr0", gateway="10.189.0.129/25"), tmp_path)
    assert kernel.other_boot(tks, "6.1.0-9-amd64") == "runs other nodes or releases (node2: bookworm -> trixie)"


def test_kernel_tier_is_dual_stack_capable_and_kernel_dual_is_the_kernel_vm(monkeypatch, tmp_path):
    """Every kernel inventory boots the same VM with IPv6 on its segment (issue 17): the host bridge
    holds gateway6, the VM's bridge gateway6 + 1, each node its address6, the client namespace client6;
    kernel-dual.yaml adds only the IPv6 service, so it deploys onto that VM."""
    from fabfile.lab.hooks import spec_for
    monkeypatch.chdir(ROOT)
    specs = {e: spec_for(e) for e in ("kernel", "kernel-trixie", "kernel-nat", "kernel-wrr", "kernel-dual")}
    for e, ks in specs.items():
        assert ks.lab.gateway6 == "fd00:189:1::129/64" and ks.guest_addr6 == "fd00:189:1::12a/64", e
        assert ks.client6 == "fd00:189:1::140", e
        assert [n.host6 for n in ks.lab.nodes] == [f"fd00:189:1::13{i}/64" for i in (1, 2, 3)], e
    d, k = load("kernel-dual")[0], load("kernel")[0]
    assert d.lab == k.lab and d.nodes == k.nodes
    assert [vi.family for vi in d.vrrp_instances] == [4, 6] and [vs.family for vs in d.virtual_servers] == [4, 6]
    # what the guest reads: the IPv6 address of its bridge and of every node
    monkeypatch.setattr(kernel, "kernel_dir", lambda: tmp_path)
    ks = specs["kernel-dual"]
    ks = kernel.KernelSpec(ks.lab, tmp_path, ks.client, ks.release, ks.client6)
    from fabfile.lab import LabSpec, rootfs
    monkeypatch.setattr(rootfs, "spec_releases", lambda spec: [])
    kernel._write_share(ks, LabSpec(nodes=ks.lab.nodes), tmp_path / "key")
    import json
    sj = json.loads((tmp_path / "share/spec.json").read_text())
    assert sj["guest_addr6"] == "fd00:189:1::12a/64"
    assert [n["host6"] for n in sj["nodes"]] == [f"fd00:189:1::13{i}/64" for i in (1, 2, 3)]
    assert "GUEST_ADDR6=fd00:189:1::12a/64\n" in (tmp_path / "share/guest.env").read_text()


@pytest.mark.parametrize("gateway6,client6,nodes6,expect", [
    (None, "fd00:189:1::140", (), "client6 needs lab.gateway6"),
    ("fd00:189:1::129/64", "fd00:189:2::140", (), "must be a free address"),
    ("fd00:189:1::129/64", "fd00:189:1::12a", (), "must be a free address"),
    ("fd00:189:1::129/64", None, ("fd00:189:1::12a/64",), "VM's own bridge address"),
])
def test_kernel_tier_ipv6_mistakes_are_one_line(gateway6, client6, nodes6, expect):
    from fabfile.lab import LabNode
    nodes = tuple(LabNode(f"n{i}", f"10.189.0.{131 + i}", host6=h) for i, h in enumerate(nodes6 or (None,)))
    with pytest.raises(LabError, match=expect) as e:
        kernel.spec(nodes, "lbtk-kbr0", "10.189.0.129/25", "10.189.0.140", "bookworm", gateway6, client6)
    assert "\n" not in str(e.value)
