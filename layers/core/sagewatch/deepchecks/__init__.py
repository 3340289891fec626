"""The Deepchecks protocol (deepchecks-client 0.19, /api/v1): a second front door onto sagewatch models.

translate.py maps Deepchecks' vocabulary (task types, column types, `_dc_*` sample columns, JSON
schemas) onto a sagewatch model; checks.py maps Deepchecks checks and alert rules onto sagewatch
metrics and rules; sagewatch.services.deepchecks is what the /api/v1 routes call. docs/deepchecks.md says what maps to
what and what does not.
"""
