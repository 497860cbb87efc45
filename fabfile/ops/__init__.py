"""What touches nodes: each operation reads facts through `fabfile.infra`, asks the pure core
(`fabfile.core`) what to do, and does it: deploy, apply, rollback, settle, the lock, verify, the
failover drill, watch, the OS upgrade, the sync daemons, digests and traffic.

Operations return typed results; `fabfile.views` draws them and `fabfile.tasks` wires flags in.
"""
