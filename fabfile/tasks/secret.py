"""`inv rotate-vrrp-secret`: a new random VRRP secret, deployed to every node at once (the work:
fabfile/ops/secret.py; the deploy's tables: fabfile/tasks/deploy.py)."""
from __future__ import annotations


from fabfile import output
from fabfile.tasks.common import DEFAULT_ENV, check_format, one_line_errors, task
from fabfile.tasks.deploy import deploy_and_show


@task(name="rotate-vrrp-secret",
      help={"env": "inventory name", "previous": "swap back to the secret the last rotation replaced",
            "format": "auto|rich|plain|markdown"})
@one_line_errors
def rotate_vrrp_secret(c, env=DEFAULT_ENV, previous=False, format=None):
    """New random VRRP secret in auth_pass_file, deployed to every node at once (never printed)."""
    from fabfile.ops.secret import rotate
    from fabfile.ops.settle import wait_for_vips
    check_format(format)
    rotate(env, previous, deploy=lambda e: deploy_and_show(e, ["keepalived"], fmt=format, rotation=True), settle=wait_for_vips,
           say=output.say)
