"""The inventory as a typed model: the schema in keepalived.conf's own key names (`schema`),
finding and loading `inventories/NAME.yaml` into one-line errors (`loading`), the VRRP secret
(`secrets`), the run's environment (`context`), what one clone keeps beside its inventory
(`clone_state`), and the hook through which the product reaches the local lab (`extensions`).
"""
