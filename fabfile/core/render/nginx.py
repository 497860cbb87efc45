"""The nginx site and the page that names the node (a client sees who answered).

The phase owns only what it renders: lbtk.conf, the page, and the sites the inventory names in
`nginx.remove_sites` (rendered as files that must not exist). Any other file in sites-enabled/ is
the operator's and is never read, diffed or removed.
"""
from __future__ import annotations

from fabfile.model.schema import NGINX_SITE, NGINX_SITES, Inventory, Node
from fabfile.core.phase import Phase
from fabfile.core.render import NodeFile, Templates, templates

SITES = NGINX_SITES
SITE = f"{SITES}/{NGINX_SITE}"
ROOT = "/var/www/lbtk"
PAGE = f"{ROOT}/index.html"


def removed(inv: Inventory) -> list[str]:
    """The sites-enabled/ paths the inventory has the toolkit remove (nginx.remove_sites)."""
    return [f"{SITES}/{name}" for name in inv.nginx.remove_sites]


def files(inv: Inventory, node: Node, t: Templates | None = None) -> list[NodeFile]:
    t = t or templates(inv)
    page = inv.nginx.page.format(node=node.name, host=node.ip, cluster=inv.cluster)
    return [
        *(NodeFile(p, None, Phase.NGINX) for p in removed(inv)),
        NodeFile(SITE, t("nginx-site.conf.j2", node=node, port=inv.nginx.port, root=ROOT, ipv6=serves_ipv6(inv)),
                 Phase.NGINX),
        NodeFile(PAGE, page if page.endswith("\n") else page + "\n", Phase.NGINX),
    ]


def serves_ipv6(inv: Inventory) -> bool:
    """Any IPv6 VIP or virtual server: nginx listens on [::] too (`listen PORT` is IPv4 only)."""
    return any(vi.family == 6 for vi in inv.vrrp_instances) or any(vs.family == 6 for vs in inv.virtual_servers)
