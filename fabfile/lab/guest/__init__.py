"""Code that runs INSIDE the kernel tier's VM (see fabfile/lab/kernel.py): guest.sh, init, nodes.py."""
