"""Lab nodes of either Debian release (issue 16): the inventory's lab.release and a node's own
lab.release, a base rootfs per release with its own stamp, bookworm's base and stamp exactly
what they were before releases existed (a lab dir shared with older clones keeps its base)."""
from __future__ import annotations

import json
import os
import typing
from pathlib import Path

import pytest

from fabfile.lab import schema as model
from fabfile.model.loading import load
from fabfile.lab import LabBastion, LabNode, LabSpec, rootfs

ROOT = Path(__file__).resolve().parents[2]


def _inv(name: str):
    return load(name)[0]


def test_release_lists_agree():
    assert typing.get_args(model.Release) == rootfs.RELEASES
    from fabfile.ops.upgrade import RELEASES        # os-upgrade's re-image needs a base of each
    assert RELEASES == rootfs.RELEASES
    assert model.DEFAULT_RELEASE == rootfs.DEFAULT_RELEASE == rootfs.RELEASES[0]


def test_inventory_release_default_and_node_override():
    plain, trixie, mixed = _inv("lab"), _inv("lab-trixie"), _inv("lab-mixed")
    assert [model.release_of(plain, n) for n in plain.nodes] == ["bookworm"] * 3
    assert [model.release_of(trixie, n) for n in trixie.nodes] == ["trixie"] * 3
    assert [model.release_of(mixed, n) for n in mixed.nodes] == ["bookworm", "bookworm", "trixie"]


def test_lab_spec_carries_each_node_release(monkeypatch):
    from fabfile.lab.hooks import spec_for
    monkeypatch.chdir(ROOT)
    spec = spec_for("lab-mixed")
    assert [(n.name, n.host, n.release) for n in spec.nodes] == \
        [("m1", "10.189.0.221", "bookworm"), ("m2", "10.189.0.222", "bookworm"), ("m3", "10.189.0.223", "trixie")]
    assert rootfs.spec_releases(spec) == ["bookworm", "trixie"]
    assert rootfs.spec_releases(spec_for("lab-trixie")) == ["trixie"]
    assert rootfs.spec_releases(spec_for("lab")) == ["bookworm"]


def test_trixie_and_mixed_labs_stay_clear_of_the_other_labs():
    """Own names, addresses .200 and up, own MACs, VIPs and virtual_router_ids: they run beside the
    plain lab, lab-N (up to lab-50), lab-bastion and the kernel tier on the same bridge."""
    def keys(inv):
        return ({n.name for n in inv.nodes} | {n.ip for n in inv.nodes} | {n.mac for n in inv.nodes}
                | {v for vi in inv.vrrp_instances for v in vi.vips}
                | {f"vrid {vi.virtual_router_id}" for vi in inv.vrrp_instances})
    others = set()
    for name in ("lab", "lab-50", "lab-bastion", "lab-multi", "kernel"):
        others |= keys(_inv(name))
    mine = [keys(_inv(name)) for name in ("lab-trixie", "lab-mixed", "lab-upgrade")]
    for k, m in enumerate(mine):
        assert not (m & others), f"clashes with the other labs: {m & others}"
        assert not any(m & o for o in mine[k + 1:])
    for name in ("lab-trixie", "lab-mixed"):
        inv = _inv(name)
        assert all(int(a.rsplit(".", 1)[1]) >= 200 for a in [n.ip for n in inv.nodes]
                   + [v for vi in inv.vrrp_instances for v in vi.vips])
    up = _inv("lab-upgrade")      # .181-.199: below the trixie labs, clear of the .241+ others use
    assert all(181 <= int(a.rsplit(".", 1)[1]) <= 199 for a in [n.ip for n in up.nodes]
               + [v for vi in up.vrrp_instances for v in vi.vips])


def test_bookworm_stamp_and_base_are_unchanged():
    """The stamp clones without releases write (same keys, same formula): any difference would
    rebuild the shared bookworm base each time a clone of the other kind brings a lab up."""
    assert rootfs.stamp() == rootfs.stamp("bookworm") == {
        "suite": "bookworm", "variant": "minbase", "packages": sorted(rootfs.PACKAGES), "recipe": rootfs.RECIPE}
    assert list(rootfs.stamp()) == ["suite", "variant", "packages", "recipe"]
    assert "nginx-light" in rootfs.stamp()["packages"]
    spec = LabSpec(nodes=(LabNode("n1", "10.189.0.11"),), lab_dir=Path("/x"))
    assert rootfs.base_dir(spec) == Path("/x/base") and rootfs.stamp_path(spec) == Path("/x/base.stamp")
    assert rootfs.base_dir(spec, "trixie") == Path("/x/base-trixie")
    assert rootfs.stamp_path(spec, "trixie") == Path("/x/base-trixie.stamp")


def test_trixie_packages():
    t = rootfs.stamp("trixie")
    assert t["suite"] == "trixie" and "nginx" in t["packages"] and "nginx-light" not in t["packages"]
    assert set(t["packages"]) - {"nginx"} == set(rootfs.stamp()["packages"]) - {"nginx-light"}


def test_stamp_per_release_rebuilds_only_that_release(tmp_path, monkeypatch):
    spec = LabSpec(nodes=(LabNode("n1", "10.189.0.11"), LabNode("n2", "10.189.0.12", release="trixie")),
                   lab_dir=tmp_path)
    for r in ("bookworm", "trixie"):
        rootfs.base_dir(spec, r).mkdir()
        rootfs.stamp_path(spec, r).write_text(json.dumps(rootfs.stamp(r)))
    assert rootfs.is_current(spec, "bookworm") and rootfs.is_current(spec, "trixie")
    (tmp_path / "base-trixie.stamp").write_text(json.dumps(rootfs.stamp("bookworm")))   # the wrong one
    assert rootfs.is_current(spec, "bookworm") and not rootfs.is_current(spec, "trixie")
    monkeypatch.setattr(rootfs, "PACKAGES", rootfs.PACKAGES + ("tcpdump",))
    assert not rootfs.is_current(spec, "bookworm")
    # a built base is returned as it is, without root or debootstrap
    rootfs.stamp_path(spec, "trixie").write_text(json.dumps(rootfs.stamp("trixie")))
    rootfs.stamp_path(spec, "bookworm").write_text(json.dumps(rootfs.stamp("bookworm")))
    assert rootfs.build_rootfs(spec, progress=lambda s: None) == {
        "bookworm": tmp_path / "base", "trixie": tmp_path / "base-trixie"}


def test_unknown_release_is_one_line():
    with pytest.raises(rootfs.LabError, match="lab release 'sid' is not one the lab builds; use one of bookworm, trixie"):
        rootfs.stamp("sid")


def test_bastion_release_counts():
    spec = LabSpec(nodes=(LabNode("n1", "10.189.0.71", release="trixie"),), inner_bridge="lbtk-x",
                   bastion=LabBastion("b", "10.189.0.30", "10.189.0.94/27"))
    assert rootfs.spec_releases(spec) == ["bookworm", "trixie"]


def test_mirror_of_the_host_release_serves_the_other(tmp_path):
    """The host's sources name bookworm only: the same archive is trixie's mirror."""
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: trixie-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: trixie trixie-updates\n")
    assert rootfs.apt_mirror(d, tmp_path / "none") == ("http://mirror.example/debian", None)


def test_bases_of_every_release_are_known_to_in_use(tmp_path, monkeypatch):
    """A node on base-trixie does not pin the bookworm base (and the other way round); an old
    trixie base is set aside as base-trixie.old-N and collected once no node runs on it."""
    for b in ("base", "base-trixie", "base-trixie.old-1", "base.new"):
        (tmp_path / b / rootfs.MARKER).parent.mkdir(parents=True)
        (tmp_path / b / rootfs.MARKER).write_text(b)
    assert [p.name for p in rootfs._bases(tmp_path)] == ["base", "base-trixie", "base-trixie.old-1"]
    root = tmp_path / "nodes/t1/root"
    (root / rootfs.MARKER).parent.mkdir(parents=True)
    os.link(tmp_path / "base-trixie" / rootfs.MARKER, root / rootfs.MARKER)
    monkeypatch.setattr(rootfs, "_running_roots", lambda d: [root])
    assert rootfs.in_use(tmp_path, tmp_path / "base-trixie")
    assert not rootfs.in_use(tmp_path, tmp_path / "base")
    assert not rootfs.in_use(tmp_path, tmp_path / "base-trixie.old-1")
    assert rootfs._old_base_name(tmp_path, "base-trixie").name == "base-trixie.old-2"
    rootfs.gc_old_bases(tmp_path, progress=lambda s: None)
    assert not (tmp_path / "base-trixie.old-1").exists() and (tmp_path / "base-trixie").is_dir()
    assert (tmp_path / "base").is_dir()
