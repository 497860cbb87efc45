""""Which node answered": one helper (fabfile.parsers.lbtk.node_in_page) reads the page served
through a VIP, wherever the question is asked: verify's HTTP check, the drill's probe here and on
the SSH gateway, the lab client's requests. The whole name: a page from lb10 is lb10, never lb1.

The two probes that run as scripts elsewhere carry the helper's own source; they run here against
a loopback server (127.0.0.1 only) serving the inventory's default page.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from fabfile.model.schema import Nginx
from fabfile.ops.drill import Probe, remote_probe_command
from fabfile.ops.traffic import client_command
from fabfile.parsers.lbtk import node_in_page, parse_client_lines, parse_probe_line

from . import loopback_http

NAMES = ["lb1", "lb10", "lb100"]


def page(node: str, host: str = "10.189.0.11") -> str:
    return Nginx().page.format(node=node, host=host, cluster="prod")


@pytest.mark.parametrize("order", [NAMES, NAMES[::-1], ["lb100", "lb1", "lb10"]])
@pytest.mark.parametrize("node", NAMES)
def test_the_whole_name_answers_never_a_prefix(node, order):
    assert node_in_page(page(node), order) == node


def test_a_page_naming_no_node_answers_none():
    assert node_in_page(page("lb1000"), NAMES) is None
    assert node_in_page("<h1>Welcome to nginx!</h1>", NAMES) is None
    assert node_in_page(page("lb1"), ["lb1.example"]) is None


@pytest.fixture
def serving():
    """A loopback HTTP server whose page names lb10."""
    with loopback_http.serving(lambda path: (200, "text/html", page("lb10").encode())) as server:
        yield server


def test_the_local_probe_reads_lb10_as_lb10(serving):
    probe = Probe("127.0.0.1", serving.server_address[1], 0.05, NAMES).start()
    try:
        while len(probe.results) < 3:
            probe.stop.wait(0.05)
    finally:
        probe.finish()
    assert {(p.ok, p.who) for p in probe.results[:3]} == {(True, "lb10")}
    assert all(0 < p.latency_s < 2 for p in probe.results[:3])      # sent -> answered, measured here


def test_the_gateway_probe_script_reads_lb10_as_lb10(serving):
    cmd = remote_probe_command("127.0.0.1", serving.server_address[1], 0.05, NAMES)
    assert cmd.startswith("python3 ")
    p = subprocess.Popen(sys.executable + cmd[len("python3"):], shell=True, stdout=subprocess.PIPE, text=True)
    try:
        lines = [p.stdout.readline() for _ in range(2)]
    finally:
        p.kill()
        p.wait(timeout=10)
        p.stdout.close()
    assert [parse_probe_line(ln) for ln in lines] == [(True, "lb10")] * 2


def test_the_lab_client_script_reads_lb10_as_lb10(serving):
    argv = client_command("127.0.0.1", serving.server_address[1], 2, NAMES, 3.0)
    r = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=60)
    assert [(ok, who) for ok, who, _ in parse_client_lines(r.stdout)] == [(True, "lb10")] * 2, r.stderr
