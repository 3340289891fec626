"""The metrics engines over Arrow tables: the query API (query, functions, filters) and data drift (drift)."""
