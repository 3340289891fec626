"""The api Lambda: API Gateway proxy events to sagewatch's REST API."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from sagewatch.api import handler as api_handler


def handler(event: dict, context: LambdaContext) -> dict:
    return api_handler(event, context)
