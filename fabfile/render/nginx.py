"""The nginx site and the page that names the node (a client sees who answered)."""
from __future__ import annotations

from ..model import Inventory, Node
from . import NodeFile, Templates, templates

SITE = "/etc/nginx/sites-enabled/lbtk.conf"
DEBIAN_DEFAULT = "/etc/nginx/sites-enabled/default"  # also claims default_server on :80
ROOT = "/var/www/lbtk"
PAGE = f"{ROOT}/index.html"


def files(inv: Inventory, node: Node, t: Templates | None = None) -> list[NodeFile]:
    t = t or templates(inv)
    page = inv.nginx.page.format(node=node.name, host=node.ip, cluster=inv.cluster)
    return [
        NodeFile(DEBIAN_DEFAULT, None, "nginx"),
        NodeFile(SITE, t("nginx-site.conf.j2", node=node, port=inv.nginx.port, root=ROOT), "nginx"),
        NodeFile(PAGE, page if page.endswith("\n") else page + "\n", "nginx"),
    ]
