"""The pure core: desired state from the model, compared with observed facts, turned into plans.

Nothing here opens a connection, runs a command or prints: render (files from the model), plan
(files and actions against facts), checks and diagnosis (desired vs observed), VRRP theory,
balance, runtime overrides, history records and the typed actions they carry.
"""
