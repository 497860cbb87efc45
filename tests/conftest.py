"""Every tier loads lab inventories: register the lab's hooks (fabfile.model.extensions) as the task
layer does when `inv` starts."""
import fabfile.lab.hooks  # noqa: F401
