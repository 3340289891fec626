"""Local mode's and the tests' SageMaker endpoints: Python predict functions behind sagemaker-runtime's
`invoke_endpoint` (moto cannot run a model).

`STAND_INS.register(endpoint_name, predict)` serves an endpoint; LocalRuntime (`sagewatch local`,
the demo) makes EndpointInvoker call STAND_INS instead of boto3 (container.use_endpoint_runtime), so
everything from the rows' CSV to reading the answer is the deployed code path; only the boto3 call is
replaced. STAND_INS is in-process: only code running in the process that started LocalRuntime (the
demo, or one's own script: docs/enrichments.md, "Local mode and tests") can register a model.
`predict` takes the rows as a 2-D numpy array (float when every column is numeric, else object)
and returns one number per row, or one row of numbers per row. A predict function that raises (or
rows it cannot read) is answered as SageMaker answers a model's failure: a ModelError (424) carrying
the model's message.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from sagewatch import aws
from sagewatch.stores.endpoints import MONITORED_TAG

Predict = Callable[[np.ndarray], Any]


@dataclass
class StandIn:
    """One endpoint: its predict function, its variants, and refusals to answer with first."""

    predict: Predict
    variants: tuple[str, ...] = ("AllTraffic",)
    answer_as: str = "text/csv"
    refusals: list[ClientError] = field(default_factory=list)
    calls: int = 0
    rows: int = 0


class StandInRuntime:
    """sagemaker-runtime's InvokeEndpoint over registered predict functions."""

    def __init__(self) -> None:
        self.endpoints: dict[str, StandIn] = {}
        self._lock = threading.Lock()

    def register(
        self,
        endpoint_name: str,
        predict: Predict,
        *,
        variants: tuple[str, ...] = ("AllTraffic",),
        answer_as: str = "text/csv",
    ) -> StandIn:
        """Serve `endpoint_name` (its `variants`) with `predict`, answering text/csv or application/json."""
        with self._lock:
            self.endpoints[endpoint_name] = StandIn(predict, tuple(variants), answer_as)
            return self.endpoints[endpoint_name]

    def throttle(self, endpoint_name: str, times: int, code: str = "ThrottlingException") -> None:
        """Refuse the endpoint's next `times` calls as SageMaker does when it throttles (or `code`)."""
        status = 429 if code == "ThrottlingException" else 503
        refusal = ClientError(
            {
                "Error": {"Code": code, "Message": "Rate exceeded"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            "InvokeEndpoint",
        )
        self.endpoints[endpoint_name].refusals.extend([refusal] * times)

    def clear(self) -> None:
        """Forget every endpoint."""
        with self._lock:
            self.endpoints.clear()

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        """boto3's invoke_endpoint: EndpointName, Body (text/csv), TargetVariant, Accept."""
        name = request["EndpointName"]
        served = self.endpoints.get(name)
        if served is None:
            raise _error("ValidationError", f"Endpoint {name} of account 123456789012 not found.", 400)
        variant = request.get("TargetVariant")
        if variant is not None and variant not in served.variants:
            raise _error("ValidationError", f"Variant {variant} not found for endpoint {name}.", 400)
        served.calls += 1
        if served.refusals:
            raise served.refusals.pop(0)
        if request.get("ContentType", "text/csv") != "text/csv":
            raise _error("ModelError", "the stand-in reads text/csv only", 424)
        try:
            rows = _rows(request["Body"])
            served.rows += len(rows)
            predictions = np.asarray(served.predict(rows), dtype=float)
        except Exception as error:  # the model's failure, whatever it is, as SageMaker reports it
            raise _error(
                "ModelError",
                f'Received server error (500) from primary with message "{type(error).__name__}: {error}". '
                f"See the endpoint's logs in account 123456789012 for more information.",
                424,
            ) from None
        if served.answer_as == "application/json":
            body = json.dumps({"predictions": predictions.tolist()}).encode()
        else:
            lines = predictions.reshape(len(predictions), -1)
            sink = io.BytesIO()
            table = pa.table({f"c{i}": lines[:, i] for i in range(lines.shape[1])})
            pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
            body = sink.getvalue()
        return {
            "Body": StreamingBody(io.BytesIO(body), len(body)),
            "ContentType": served.answer_as,
            "InvokedProductionVariant": variant or served.variants[0],
        }


def _rows(body: bytes) -> np.ndarray:
    table = pacsv.read_csv(
        io.BytesIO(body),
        read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),  # RFC 4180: a quoted value may hold one
    )
    numeric = all(pa.types.is_integer(c.type) or pa.types.is_floating(c.type) for c in table.columns)
    columns = [c.to_numpy(zero_copy_only=False) for c in table.columns]
    return np.column_stack(columns).astype(float if numeric else object)


def _error(code: str, message: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "InvokeEndpoint",
    )


# The process's stand-ins: code in the process running LocalRuntime (the demo, one's script) registers here.
STAND_INS = StandInRuntime()


def load_predict(spec: str) -> Predict:
    """The predict function `module:function` names, imported now (from the current directory too,
    as `python -m` would): its imports happen here, not inside a handler that Lambda's limits bind."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"{spec!r}: name the predict function as module:function")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    predict = getattr(importlib.import_module(module_name), function_name, None)
    if not callable(predict):
        raise ValueError(f"{spec!r}: {module_name} has no function {function_name}")
    return predict


def serve(endpoint_name: str, predict: Predict, variants: tuple[str, ...] = ("AllTraffic",)) -> None:
    """Serve `predict` as the SageMaker endpoint `endpoint_name` of the local stack: registered with
    STAND_INS, and the endpoint made in the emulator (each variant one instance) unless it exists."""
    STAND_INS.register(endpoint_name, predict, variants=variants)
    with contextlib.suppress(ClientError):  # served again (a restart): the endpoint exists
        aws.client("sagemaker").describe_endpoint(EndpointName=endpoint_name)
        return
    create_endpoint(endpoint_name, dict.fromkeys(variants, 1))


def create_endpoint(endpoint_name: str, instances: dict[str, int]) -> None:
    """The SageMaker endpoint `endpoint_name` in the emulator, its variants with their instance
    counts, tagged sagewatch:monitored=true so sagewatch may describe and call it."""
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model(
        ModelName=f"{endpoint_name}-model",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagewatch-local",
        PrimaryContainer={"Image": "sagewatch-local-stand-in"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{endpoint_name}-config",
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": f"{endpoint_name}-model",
                "InitialInstanceCount": count,
                "InstanceType": "ml.m5.large",
            }
            for variant, count in instances.items()
        ],
    )
    sagemaker.create_endpoint(
        EndpointName=endpoint_name,
        EndpointConfigName=f"{endpoint_name}-config",
        Tags=[{"Key": MONITORED_TAG, "Value": "true"}],
    )
