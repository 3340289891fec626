"""The REST API's routes and request/response models, one Router per area; they call services only.

sagewatch.handlers.api assembles them into the resolver the api Lambda runs.
"""

# An error answer's body as the OpenAPI document describes it (handlers/openapi.py defines the schema)
ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
