"""keepalived's own log file (inventory `logging:`): the rsyslog rule that writes keepalived's
syslog facility to it, and its logrotate entry. keepalived's half (--log-facility) is in
/etc/default/keepalived (render/keepalived.py). Without `logging:` both files must not exist."""
from __future__ import annotations

from fabfile.model.schema import Inventory
from fabfile.core.phase import Phase
from fabfile.core.render import NodeFile, Templates, templates

RULE = "/etc/rsyslog.d/lbtk-keepalived.conf"
ROTATE = "/etc/logrotate.d/lbtk-keepalived"
UNIT = "rsyslog"


def files(inv: Inventory, t: Templates | None = None) -> list[NodeFile]:
    # phase lvs, beside /etc/default/keepalived: the rule and keepalived's start options only
    # make sense together (without the rule, local0 lines would land in /var/log/syslog)
    lg = inv.logging
    if lg is None:
        return [NodeFile(RULE, None, Phase.LVS), NodeFile(ROTATE, None, Phase.LVS)]
    t = t or templates(inv)
    return [NodeFile(RULE, t("rsyslog-keepalived.conf.j2", facility=lg.facility, file=lg.file), Phase.LVS),
            NodeFile(ROTATE, t("logrotate-keepalived.j2", file=lg.file), Phase.LVS)]
