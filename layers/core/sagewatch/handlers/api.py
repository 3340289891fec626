"""The api Lambda: one Powertools resolver over every router of sagewatch.api, errors answered with the
status each carries, every request authenticated first.

`handler` is the api Lambda's entry point (and the local runtime's): it checks the token and its
role before routing, so an unauthenticated request learns nothing about routes or bodies.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from sagewatch import __version__, jsonl
from sagewatch.api import (
    alerting,
    deepchecks,
    endpoints,
    enrichments,
    explanations,
    hotspots,
    inferences,
    ingestion,
    models,
    query,
    users,
    variants,
)
from sagewatch.api.unsupported import unsupported_feature
from sagewatch.auth import authorize
from sagewatch.container import token_store
from sagewatch.dashboard import SECURITY_HEADERS, asset, is_dashboard_path
from sagewatch.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    SagewatchError,
    TooLarge,
    Unauthorized,
    Unsupported,
    UnsupportedMediaType,
    field_path,
)

logger = Logger(service="sagewatch-api")
tracer = Tracer()  # X-Ray in Lambda (boto3 calls as subsegments); off elsewhere


app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=jsonl.loads)
app.include_router(models.router, prefix="/api/v3")
app.include_router(ingestion.router, prefix="/api/v3")
app.include_router(inferences.router, prefix="/api/v3")
app.include_router(query.router, prefix="/api/v3")
app.include_router(alerting.router, prefix="/api/v3")
app.include_router(users.router, prefix="/api/v3")
app.include_router(variants.router, prefix="/api/v3")
app.include_router(endpoints.router, prefix="/api/v3")
app.include_router(enrichments.router, prefix="/api/v3")
app.include_router(hotspots.router, prefix="/api/v3")
app.include_router(explanations.router, prefix="/api/v3")
app.include_router(alerting.metrics_v4, prefix="/api/v4")
app.include_router(deepchecks.router, prefix="/api/v1")

# Lambda returns at most 6,291,556 bytes; the response document (headers, escaped body) must fit.
MAX_RESPONSE_BYTES = 6_000_000


def error_status(error: SagewatchError) -> HTTPStatus:
    """The HTTP status a domain error carries (sagewatch.errors)."""
    return HTTPStatus(error.status)


def json_response(status: int, body: Any) -> Response:
    """A JSON answer with this status."""
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


@app.exception_handler(SagewatchError)
def _domain_error(error: SagewatchError) -> Response:
    return json_response(error_status(error), error.to_dict())


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response:
    """Pydantic's findings as 400s: the first problem in the message, all of them in `errors`."""
    invalid_json = [p for p in error.errors() if p.get("type") == "json_invalid"]
    if invalid_json:  # the reason sagewatch.jsonl.loads gave (too deep, a lone surrogate, ...)
        reason = (invalid_json[0].get("ctx") or {}).get("error")
        return json_response(
            HTTPStatus.BAD_REQUEST,
            {"message": "body: not valid JSON" + (f" ({reason})" if reason else ""), "field": "body"},
        )
    problems = [
        # a problem with the body as a whole (missing, not an object or a list) is the body's
        {"field": field_path(problem.get("loc", ())) or "body", "message": problem.get("msg", "invalid")}
        for problem in error.errors()
    ]
    first = problems[0] if problems else {"field": "body", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    return json_response(
        HTTPStatus.BAD_REQUEST, {"message": message, "field": first["field"], "errors": problems}
    )


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_content_type(error: RequestUnsupportedContentType) -> Response:
    content_type = app.current_event.headers.get("content-type", "")
    return json_response(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        {
            "message": f"Content-Type {content_type!r} is not accepted here: send application/json",
            "field": "body",
        },
    )


@app.exception_handler(UnicodeDecodeError)
def _undecodable_body(error: UnicodeDecodeError) -> Response:
    return json_response(
        HTTPStatus.BAD_REQUEST, {"message": "body: not UTF-8 text, so not JSON", "field": "body"}
    )


@app.exception_handler(RecursionError)
def _too_deep(error: RecursionError) -> Response:
    """JSON nested past what the parser follows (about 1,000 levels): a 400, not a crash."""
    return json_response(
        HTTPStatus.BAD_REQUEST, {"message": "body: JSON nested too deeply to read", "field": "body"}
    )


@app.exception_handler(json.JSONDecodeError)
def _malformed_json(error: json.JSONDecodeError | None) -> Response:
    detail = f" ({error.msg})" if error else ""
    return json_response(
        HTTPStatus.BAD_REQUEST, {"message": f"body: not valid JSON{detail}", "field": "body"}
    )


@app.not_found
def _no_route(error: Exception) -> Response:
    event = app.current_event
    feature = unsupported_feature(event.path)
    if feature:
        return _domain_error(
            Unsupported(f"sagewatch does not support {feature} (see docs/coming-from-arthur.md)")
        )
    return json_response(HTTPStatus.NOT_FOUND, {"message": f"no route {event.http_method} {event.path}"})


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response:
    logger.error("unhandled error", exc_info=error)
    request_id = app.current_event.request_context.request_id if app.current_event else None
    return json_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        {"message": "internal error; the request id is in the logs", "request_id": request_id},
    )


@app.get("/api/v3/version", summary="sagewatch's version", tags=["meta"])
def version() -> dict[str, str]:
    return {"version": __version__}


def _refused(error: SagewatchError) -> dict[str, Any]:
    """A proxy response for a request refused before routing."""
    return {
        "statusCode": int(error_status(error)),
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps(error.to_dict()),
        "isBase64Encoded": False,
    }


def _set_header(event: dict[str, Any], name: str, value: str) -> None:
    """Replace a header of a proxy event, whatever the case its key was sent in."""
    headers = event.get("headers") or {}
    for key in [k for k in headers if k.lower() == name]:
        del headers[key]
    headers[name] = value
    event["headers"] = headers


def _dashboard(path: str) -> dict[str, Any]:
    """A proxy response with a file of the dashboard, or a 404."""
    found = asset(path)
    if found is None:
        return _refused(NotFound(f"the dashboard has no file {path}"))
    return {
        "statusCode": 200,
        "headers": {"Content-Type": found.content_type, **SECURITY_HEADERS},
        "body": found.body.decode("utf-8"),
        "isBase64Encoded": False,
    }


@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The api Lambda: authenticate and authorize, then route."""
    request = APIGatewayProxyEvent(event)
    if is_dashboard_path(request.http_method, request.path):  # the page signs in itself
        return _dashboard(request.path)
    try:
        token = token_store().authenticate(
            request.headers.get("authorization") or request.headers.get("Authorization")
        )
        authorize(token.role, request.http_method, request.path)
    except (Unauthorized, Forbidden) as error:
        return _refused(error)
    body = request.body or ""
    size = len(body) * 3 // 4 if request.is_base64_encoded else len(body.encode("utf-8", "surrogatepass"))
    if size > inferences.MAX_BODY_BYTES:  # what Lambda refuses; the local bridge passes it on
        return _refused(
            TooLarge(
                f"the body is {size} bytes; at most {inferences.MAX_BODY_BYTES} go through the API: "
                "send it in parts, or as a file through an upload URL",
                field="body",
            )
        )
    content_type = request.headers.get("content-type") or request.headers.get("Content-Type") or ""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded" and size:
        # curl -d sends JSON as a form; Powertools would read it as form fields and report them missing
        return _refused(
            UnsupportedMediaType(
                "Content-Type application/x-www-form-urlencoded is not accepted: send JSON with "
                "Content-Type: application/json (curl: -H 'Content-Type: application/json')",
                field="Content-Type",
            )
        )
    if media_type == "application/json" and not content_type.startswith("application/json"):
        _set_header(event, "content-type", "application/json" + content_type[len("application/json") :])
    if media_type == "multipart/form-data" and "boundary=" not in content_type:
        # Powertools would fail on it with a bare ValueError (a 500)
        return _refused(
            InvalidInput("Content-Type multipart/form-data needs its boundary= parameter", field="body")
        )
    app.append_context(token=token)
    response = app.resolve(event, context)
    if len(json.dumps(response)) > MAX_RESPONSE_BYTES:  # Lambda would refuse it: API Gateway's 500
        logger.warning("response over Lambda's limit refused", extra={"path": request.path})
        response = _refused(
            TooLarge(
                "the answer is larger than a Lambda can return (6 MB): ask for less "
                "(a smaller limit, page_size or rows_count, or fewer properties)",
                field="body",
            )
        )
    if response.get("statusCode") == HTTPStatus.NO_CONTENT:  # Powertools writes `null`; 204 has no body
        response["body"] = ""
        for headers in (response.get("headers") or {}, response.get("multiValueHeaders") or {}):
            headers.pop("Content-Type", None)
    return response
