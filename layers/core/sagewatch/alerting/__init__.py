"""Alerting without AWS: metrics and their measurement (catalog), Arthur's shapes (types), rule windows."""
