"""lbtk: Keepalived + LVS + Nginx load balancers from one inventory (README.md)."""

__version__ = "0.1.0"     # `python -m fabfile.tasks --version`; pyproject.toml reads it from here
