"""keepalived.conf read as data (fabfile/parsers/keepalived_conf.py) and what it means
(fabfile/core/conf_meaning.py), on keepalived's own doc/samples (tests/fixtures/keepalived-samples/,
classified by the real keepalived -t in manifest.json) and on lbtk's own golden configs."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fabfile.core.conf_meaning import diff, meaning_of
from fabfile.parsers import ParseError
from fabfile.parsers.keepalived_conf import MemoryFiles, format_conf, parse_conf, parse_file

TESTS = Path(__file__).resolve().parents[1]
SAMPLES = TESTS / "fixtures/keepalived-samples"
SAMPLE_FILES = sorted(SAMPLES.glob("keepalived.conf.*"))
GOLDEN = sorted(TESTS.glob("golden/*/*/etc/keepalived/keepalived.conf"))
ONE_LINE = re.compile(r"^[^\s:]+:\d+: \S.*$")


def _id(p: Path) -> str:
    return p.name if p.parent == SAMPLES else "/".join(p.parts[-5:-3])


def test_the_corpus_is_there_and_classified():
    manifest = json.loads((SAMPLES / "manifest.json").read_text())
    assert len(SAMPLE_FILES) >= 20
    assert sorted(manifest["samples"]) == [p.name for p in SAMPLE_FILES]
    assert manifest["keepalived"].startswith("Keepalived v2.2.7")
    assert any(e["valid"] for e in manifest["samples"].values())
    assert "GPL" in (SAMPLES / "README.md").read_text()


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=_id)
def test_every_sample_reads_with_its_instances_and_virtual_servers(path):
    text = path.read_text()
    conf = parse_conf(text, path.name)
    for keyword in ("vrrp_instance", "virtual_server", "vrrp_script", "vrrp_sync_group", "virtual_server_group"):
        written = len(re.findall(rf"^\s*(?:@\S+\s+)?{keyword}\s", text, re.M))
        assert len(conf.find(keyword)) == written, keyword
    for s in conf.find("vrrp_instance") + conf.find("virtual_server"):
        assert s.file == path.name and s.children is not None and text.splitlines()[s.line - 1].strip().startswith(s.keyword)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=_id)
def test_every_sample_means_itself_and_its_reformatted_copy(path):
    conf = parse_conf(path.read_text(), path.name)
    m = meaning_of(conf)
    assert diff(m, m) == []
    again = meaning_of(parse_conf(format_conf(conf.top)))
    assert diff(m, again) == [] and m == again
    assert set(m["vrrp_instance"]) == {s.args[0] for s in conf.find("vrrp_instance")}
    assert len(m["virtual_server"]) == len(conf.find("virtual_server"))


@pytest.mark.parametrize("path", GOLDEN, ids=_id)
def test_lbtk_golden_config_means_itself_reparsed(path):
    conf = parse_conf(path.read_text())
    assert diff(meaning_of(conf), meaning_of(parse_conf(format_conf(conf.top)))) == []


def _changed(conf, block: str, keyword: str, new: list[str]):
    """The config with the first `keyword` under a `block` statement given `new` arguments."""
    def walk(stmts, inside):
        for s in stmts:
            if inside and s.keyword == keyword:
                s.args = new
                return True
            if s.children and walk(s.children, inside or s.keyword == block):
                return True
        return False
    assert walk(conf.top, False)
    return parse_conf(format_conf(conf.top))


def test_a_changed_weight_vip_or_priority_is_one_difference():
    text = (TESTS / "golden/nat_wrr/lb1/etc/keepalived/keepalived.conf").read_text()
    base = meaning_of(parse_conf(text))
    weight = diff(base, meaning_of(_changed(parse_conf(text), "real_server", "weight", ["7"])))
    assert weight == ["virtual_server 10.189.0.100 80 TCP real_server 10.189.0.31 8080 weight: 3 -> 7"]
    prio = diff(base, meaning_of(_changed(parse_conf(text), "vrrp_instance", "priority", ["150"])))
    assert prio == ["vrrp_instance VI_1 priority: 200 -> 150"]
    conf = parse_conf(text)
    vips = conf.find("vrrp_instance")[0].first("virtual_ipaddress")
    vips.children[0].keyword = "10.189.0.101"
    vip = diff(base, meaning_of(parse_conf(format_conf(conf.top))))
    assert vip == ["vrrp_instance VI_1 virtual_ipaddress: - 10.189.0.100/32, + 10.189.0.101/32"]


def test_what_keepalived_reads_alike_means_alike():
    a = """vrrp_script chk { script "/bin/pgrep  -x nginx"
    weight -20 }
    vrrp_instance VI_1 { interface eth0
      virtual_router_id 5
      advert_int 1.0
      authentication { auth_type PASS
        auth_pass 12345678xyz }
      virtual_ipaddress { 10.0.0.2
        10.0.0.1/32 dev eth0 }
      track_script { chk } }
    virtual_server 10.0.0.1 80 { lvs_sched rr
      lvs_method DR
      real_server 10.0.0.12 80 { TCP_CHECK { retry 3 } }
      real_server 10.0.0.11 80 { weight 1 } }"""
    b = """vrrp_script chk {
        script /bin/pgrep -x nginx
        weight -20
    }
    vrrp_instance VI_1 {
        state BACKUP
        priority 100
        interface eth0
        virtual_router_id 5
        authentication {
            auth_type PASS
            auth_pass 12345678
        }
        virtual_ipaddress {
            10.0.0.1
        }
        virtual_ipaddress {
            10.0.0.2/32
        }
        track_script {
            chk weight -20
        }
    }
    virtual_server 10.0.0.1 80 {
        lb_algo rr
        lb_kind DR
        protocol TCP
        delay_loop 60
        real_server 10.0.0.11 80 {
        }
        real_server 10.0.0.12 80 {
            weight 1
            TCP_CHECK {
                retry 3
                connect_port 80
                connect_timeout 5
            }
        }
    }"""
    ma, mb = meaning_of(parse_conf(a)), meaning_of(parse_conf(b))
    assert diff(ma, mb) == [] and ma == mb
    assert "12345678" not in repr(ma)


def test_a_checker_setting_from_the_virtual_server_is_the_checkers():
    inherit = "virtual_server 10.0.0.1 80 { connect_timeout 3\n real_server 10.0.0.2 80 { TCP_CHECK { } } }"
    own = "virtual_server 10.0.0.1 80 { real_server 10.0.0.2 80 { TCP_CHECK { connect_timeout 3 } } }"
    assert diff(meaning_of(parse_conf(inherit)), meaning_of(parse_conf(own))) == []
    other = own.replace("connect_timeout 3", "connect_timeout 4")
    assert diff(meaning_of(parse_conf(inherit)), meaning_of(parse_conf(other))) == [
        "virtual_server 10.0.0.1 80 TCP real_server 10.0.0.2 80 checkers TCP_CHECK connect_timeout: 3 -> 4"]


def test_a_keyword_keepalived_knows_without_a_rule_here_is_kept_and_one_it_ignores_means_nothing():
    """net_namespace is keepalived's (no rule here: kept as written); fancy_new and nb_get_retry
    inside TCP_CHECK are not keepalived 2.2.7's words there: it ignores them ("Unknown keyword")."""
    a = meaning_of(parse_conf("vrrp_instance V { interface eth0\n fancy_new 1 }\nnet_namespace blue\n"
                              "virtual_server 10.0.0.1 80 { real_server 10.0.0.2 80 { TCP_CHECK { nb_get_retry 3 } } }"))
    b = meaning_of(parse_conf("vrrp_instance V { interface eth0\n fancy_new 2 }\nnet_namespace red\n"
                              "virtual_server 10.0.0.1 80 { real_server 10.0.0.2 80 { TCP_CHECK { } } }"))
    assert diff(a, b) == ["other net_namespace: blue -> red"]


# -- the reader --------------------------------------------------------------------------------

def test_words_quotes_comments_and_braces_as_keepalived_reads_them():
    conf = parse_conf('vrrp_script s{ script "/bin/x # not a comment" ! comment\n'
                      '  weight -2 # c\n  user a\\#b }')
    s = conf.find("vrrp_script")[0]
    assert s.args == ["s"] and s.value("script") == "/bin/x # not a comment"
    assert [(c.keyword, c.args, c.line) for c in s.children] == [
        ("script", ["/bin/x # not a comment"], 1), ("weight", ["-2"], 2), ("user", ["a#b"], 3)]


def test_a_brace_on_the_next_line_opens_the_block():
    conf = parse_conf("vrrp_instance VI_1\n{\n  priority 5\n}\n")
    assert conf.find("vrrp_instance")[0].value("priority") == "5"


@pytest.mark.parametrize("text, where", [
    ("vrrp_instance VI_1 {\n  priority 5\n", "keepalived.conf:1"),
    ("global_defs {\n}\n}\n", "keepalived.conf:3"),
    ("\n{\n", "keepalived.conf:2"),
    ('vrrp_script s {\n script "/bin/x\n}', "keepalived.conf:2"),
    ("~SEQ(i,1,3) vrrp_instance VI_$i {}\n", "keepalived.conf:1"),
])
def test_errors_are_one_line_with_file_and_line(text, where):
    with pytest.raises(ParseError) as e:
        parse_conf(text)
    assert "\n" not in str(e.value) and ONE_LINE.match(str(e.value)) and str(e.value).startswith(where + ":")


def test_includes_are_followed_through_the_reader_relative_to_the_including_file():
    files = MemoryFiles({
        "/etc/keepalived/keepalived.conf": "global_defs { router_id a }\ninclude conf.d/*.conf\n"
                                           "include /etc/keepalived/{x,y}.inc\ninclude missing/*.conf\n",
        "/etc/keepalived/conf.d/b.conf": "vrrp_instance B { interface eth0 }\n",
        "/etc/keepalived/conf.d/a.conf": "vrrp_instance A {\n  include ../vips.inc\n}\n",
        "/etc/keepalived/conf.d/a.conf.bak": "vrrp_instance OLD { }\n",
        "/etc/keepalived/vips.inc": "virtual_ipaddress { 10.0.0.1 }\n",
        "/etc/keepalived/y.inc": "virtual_server 10.0.0.1 80 { }\n",
    })
    conf = parse_file("/etc/keepalived/keepalived.conf", files)
    assert [s.args[0] for s in conf.find("vrrp_instance")] == ["A", "B"]
    a = conf.find("vrrp_instance")[0]
    assert a.first("virtual_ipaddress").words() == ["10.0.0.1"]
    assert a.first("virtual_ipaddress").where == "/etc/keepalived/vips.inc:1"
    assert conf.find("virtual_server")[0].where == "/etc/keepalived/y.inc:1"
    assert [(i.pattern, i.paths) for i in conf.includes if not i.paths] == [("missing/*.conf", ())]
    assert conf.files[0] == "/etc/keepalived/keepalived.conf" and len(conf.files) == 5


def test_an_include_loop_and_an_unreadable_file_are_one_line():
    loop = MemoryFiles({"k.conf": "include k.conf\n"})
    with pytest.raises(ParseError, match=r"^k\.conf:1: includes nested deeper"):
        parse_file("k.conf", loop)
    with pytest.raises(ParseError, match=r"^/x/k\.conf: cannot read"):
        parse_file("/x/k.conf", MemoryFiles({}))


def test_without_a_reader_an_include_is_recorded_not_followed():
    conf = parse_conf("include /etc/keepalived/conf.d/*.conf\nglobal_defs { }\n")
    assert [(i.pattern, i.paths) for i in conf.includes] == [("/etc/keepalived/conf.d/*.conf", ())]
    assert [s.keyword for s in conf.top] == ["global_defs"]


def test_conditional_lines_follow_the_config_id():
    text = (SAMPLES / "keepalived.conf.conditional_conf").read_text()
    high = parse_conf(text, config_id="high")
    assert high.find("vrrp_instance")[0].value("priority") == "170"
    assert high.find("net_namespace")[0].args == ["high"]
    low = parse_conf(text, config_id="low")
    assert low.find("vrrp_instance")[0].value("priority") == "85"
    neither = parse_conf(text)
    assert neither.find("vrrp_instance")[0].value("priority") is None
    assert [(c.config_id, c.taken) for c in high.conditionals][:2] == [("high", True), ("low", False)]
    assert parse_conf("@^lb1 priority 5\n@^lb2 priority 6", config_id="lb1").top[0].args == ["6"]


def test_definitions_are_replaced_including_multi_line_ones():
    conf = parse_conf("$IF=eth1\n$VIPS=virtual_ipaddress { \\\n  10.0.0.1 \\\n  10.0.0.2 \\\n}\n"
                      "vrrp_instance V {\n interface ${IF}\n $VIPS\n  unknown $NOPE\n}\n")
    v = conf.find("vrrp_instance")[0]
    assert v.value("interface") == "eth1"
    assert v.first("virtual_ipaddress").words() == ["10.0.0.1", "10.0.0.2"]
    assert v.first("unknown").args == ["$NOPE"]
    assert [(d.name, d.line) for d in conf.definitions] == [("IF", 1), ("VIPS", 2)]


def test_at_line_stays_in_the_main_file():
    files = MemoryFiles({"m.conf": "include i.conf\nvrrp_instance V {\n  priority 5\n}\n",
                         "i.conf": "global_defs {\n  router_id x\n}\n"})
    conf = parse_file("m.conf", files)
    assert [s.keyword for s in conf.at_line(3)] == ["vrrp_instance", "priority"]
    assert [s.keyword for s in conf.at_line(2, "i.conf")] == ["global_defs", "router_id"]


def test_global_fifo_scripts_follow_script_user(monkeypatch):
    """keepalived sets a global_defs FIFO script's user as it parses that line: before script_user
    it looks for keepalived_script, which Debian lacks, and drops the script at start (keepalived -t
    says nothing). Every rendered global_defs puts script_user first."""
    from tests.unit.test_golden import CASES, rendered
    monkeypatch.setenv("TEST_VRRP_PASS", "s3cret")
    seen = 0
    for case, env in CASES.items():
        inv, per_node = rendered(env)
        for node, files in per_node.items():
            conf = next((f.content for f in files if f.path == "/etc/keepalived/keepalived.conf"), None)
            if not conf or "fifo_script" not in conf:
                continue
            globals_ = conf.split("global_defs {", 1)[1].split("\n}", 1)[0].splitlines()
            user = next((i for i, ln in enumerate(globals_) if ln.strip().startswith("script_user")), None)
            for i, ln in enumerate(globals_):
                if "_fifo" in ln:
                    seen += 1
                    assert user is not None and user < i, (case, node, ln)
    assert seen >= 4
