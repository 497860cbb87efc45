#!/bin/sh
# vrrp_script chk_nginx: nginx answers on this node (exit 0) or the node gives up its VIPs
exec /usr/bin/pgrep -x nginx >/dev/null
