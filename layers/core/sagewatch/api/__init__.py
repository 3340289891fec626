"""The REST API's routes and request/response models, one Router per area; they call services only.

sagewatch.handlers.api assembles them into the resolver the api Lambda runs.
"""
