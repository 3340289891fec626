"""The Lambda entry points (api, ingest, evaluator, scheduler): Powertools wiring over the services."""
