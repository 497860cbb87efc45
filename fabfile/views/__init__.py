"""The output layer: every table the toolkit draws, built from the core's results.

The core (phases, verify, failover, sync ...) returns typed results and never prints; each
module here turns one kind of result into fabfile.output Tables (rich on a terminal, tabulate
for plain/markdown) or lines. Tasks call the core, then a view.
"""
