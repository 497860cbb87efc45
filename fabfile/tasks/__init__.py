"""The Invoke task tree. `tasks.py` at the repository root exposes `namespace`."""
from invoke import Collection

import fabfile.lab.hooks  # noqa: F401  (registers the lab's hooks, fabfile.model.extensions, before any inventory loads)
from fabfile.tasks import (adopt, alerts, connections, core, deploy, drift, failover, history, lab, metrics, oncall, secret, sync, tables, upgrade, verify, watch)

namespace = Collection()
for t in (core.render, core.check, deploy.install, deploy.arp, deploy.nginx, deploy.lvs,
          deploy.keepalived, deploy.deploy, verify.verify,
          failover.failover_test, sync.sync_start, sync.sync_stop, sync.sync_status,
          oncall.status, oncall.drain, oncall.undrain, oncall.isolate, oncall.logs, oncall.digest, drift.diff, drift.rollback, history.history,
          secret.rotate_vrrp_secret, tables.ipvs, tables.addrs, tables.vrrp, metrics.metrics, alerts.alerts,
          watch.watch, upgrade.os_upgrade, adopt.import_, connections.connections):
    namespace.add_task(t)
namespace.add_collection(lab.collection)
