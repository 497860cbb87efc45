"""The shell around the core: SSH (`remote`, the only Fabric code), the facts a node can be asked
(`facts`: command + parser + typed field) and gathering them in one round trip (`observe`),
`keepalived -t` run locally (`confcheck`), who runs a change (`runinfo`).
"""
