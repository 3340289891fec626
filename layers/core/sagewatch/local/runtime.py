"""`sagewatch local`: the whole platform on a laptop.

moto's server stands in for AWS on loopback; the declared resources are created in it; the REST
API is served on loopback through the real api handler; background workers (queue pollers, the
evaluator timer) run beside it. `<state-dir>/local.json` tells scripts, the client and tests where
everything is.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sagewatch import aws, container
from sagewatch.auth import Role
from sagewatch.handlers.api import handler
from sagewatch.local.emulator import serialize_dynamodb_requests
from sagewatch.local.endpoints import STAND_INS
from sagewatch.local.http_bridge import make_server
from sagewatch.local.lambda_limits import LambdaImports, api_limits
from sagewatch.local.pollers import evaluate_poller, ingest_poller, schedule_timer
from sagewatch.local.provision import provision
from sagewatch.local.sql import DuckdbEngine
from sagewatch.local.workers import PeriodicWorker
from sagewatch.resources import DECLARATION
from sagewatch.settings import environment_for, physical_names
from sagewatch.stores.notify import sender_address
from sagewatch.webhooks import ALLOW_PRIVATE_ENV

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
STATE_FILE = "local.json"


def local_environment(aws_endpoint_url: str, region: str, names: dict[str, str]) -> dict[str, str]:
    """Environment that points boto3 at the emulator and sagewatch's settings at these resources."""
    return {
        **LOCAL_CREDENTIALS,
        "AWS_ENDPOINT_URL": aws_endpoint_url,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "POWERTOOLS_METRICS_DISABLED": "true",  # CloudWatch metrics: deployed only
        ALLOW_PRIVATE_ENV: "allow",  # webhooks to the user's own machine and network (never link-local)
        **environment_for(names),
    }


def use_duckdb(sql_rows: int | None = None) -> DuckdbEngine:
    """Make DuckDB the query API's SQL engine (Athena's stand-in) in this process's container; with
    `sql_rows`, windows past that many rows go to it (else the deployed limit)."""
    engine = DuckdbEngine(container.lake_store())
    watched = container.monitoring()
    watched.sql = engine
    if sql_rows is not None:
        watched.sql_rows = sql_rows
    return engine


class StateFileError(ValueError):
    """local.json exists but is not what `sagewatch local` writes."""


@dataclass(frozen=True)
class LocalStack:
    """What local.json holds: where the API and the emulated AWS are, and every resource's name."""

    api_url: str
    token: str
    aws_endpoint_url: str
    region: str
    tables: dict[str, str]
    buckets: dict[str, str]
    queues: dict[str, str]
    queue_urls: dict[str, str]

    @property
    def environment(self) -> dict[str, str]:
        """The environment under which boto3 and sagewatch's stores reach this stack."""
        return local_environment(
            self.aws_endpoint_url, self.region, {**self.tables, **self.buckets, **self.queues}
        )

    @classmethod
    def read(cls, state_dir: str | Path) -> LocalStack:
        """The running `sagewatch local` stack, from <state_dir>/local.json; FileNotFoundError if none."""
        path = Path(state_dir) / STATE_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: start the stack with `sagewatch local` first")
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as error:  # not JSON, or not this shape
            raise StateFileError(
                f"{path} is not a state file of `sagewatch local` ({error}): remove it and start the stack again"
            ) from None


def _check_free(option: str, port: int) -> None:
    """OSError naming the option when another program listens on the loopback port (0: any port)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise OSError(f"{option} {port}: the port is taken ({error.strerror}); choose another") from None


class LocalRuntime:
    """Start with `start()`, stop with `stop()` (or use it as a context manager)."""

    def __init__(
        self,
        state_dir: str | Path = ".sagewatch",
        api_port: int = 8080,
        aws_port: int = 5000,
        region: str = "us-east-1",
        prefix: str = "sagewatch",
        workers: list[PeriodicWorker] | None = None,
        poll_queues: bool = True,
        poll_interval_seconds: float = 1.0,
        evaluate_every_seconds: float | None = DECLARATION.schedules[0].rate_minutes * 60,
        lambda_imports: bool = False,
        sql_rows: int | None = None,
    ) -> None:
        """lambda_imports: make this process lack what a Lambda lacks (pandas, scipy, ...), as
        `sagewatch local` does; the demo, which simulates an endpoint with pandas, does not.
        sql_rows: queries over windows past this many rows run in DuckDB (Athena's stand-in);
        None: the deployed limit (services/monitoring.SQL_ROWS)."""
        self.state_dir = Path(state_dir)
        self.api_port = api_port
        self.aws_port = aws_port
        self.region = region
        self.prefix = prefix
        self.workers = list(workers or [])
        self.poll_queues = poll_queues
        self.poll_interval_seconds = poll_interval_seconds
        self.evaluate_every_seconds = evaluate_every_seconds
        self.imports = LambdaImports() if lambda_imports else None
        self.sql_rows = sql_rows
        self._hidden: dict[str, object] = {}
        self.stack: LocalStack | None = None
        self._stopping = threading.Event()
        self._stopped = False
        self._threads: list[threading.Thread] = []
        self._moto = None
        self._http = None

    def start(self) -> LocalStack:
        """Start the emulator, create the resources and an admin token, serve the API, start the workers.

        Returns the stack, also written to local.json."""
        from moto.server import ThreadedMotoServer  # moto is a local-mode dependency, not a Lambda one

        serialize_dynamodb_requests()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
        _check_free("--aws-port", self.aws_port)  # moto's server would only log it, and hang
        _check_free("--port", self.api_port)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.aws_port, verbose=False)
        self._moto.start()
        host, aws_port = self._moto.get_host_and_port()
        aws_endpoint_url = f"http://{host}:{aws_port}"

        names = physical_names(self.prefix)
        os.environ.update(local_environment(aws_endpoint_url, self.region, names))
        container.reset()
        container.use_endpoint_runtime(STAND_INS)  # moto runs no model: endpoints are Python functions
        created = provision(names)
        use_duckdb(self.sql_rows)
        _, token = container.token_store().create(Role.ADMIN, description="created by sagewatch local")
        aws.client("ses").verify_email_identity(
            EmailAddress=sender_address()
        )  # SES sends from verified senders
        if self.poll_queues:
            self.workers[:0] = [
                ingest_poller(created["ingest_url"], self.poll_interval_seconds),
                evaluate_poller(created["evaluate_url"], self.poll_interval_seconds),
            ]
            if self.evaluate_every_seconds:
                self.workers.append(schedule_timer(self.evaluate_every_seconds))

        if self.imports is not None:
            self._hidden = self.imports.install()
        self._http = make_server(api_limits(handler), "127.0.0.1", self.api_port)
        api_host, api_port = self._http.server_address[:2]
        self._spawn("api", self._http.serve_forever)
        for worker in self.workers:
            self._spawn(worker.name, lambda w=worker: w.run(self._stopping))

        self.stack = LocalStack(
            api_url=f"http://{api_host}:{api_port}",
            token=token,
            aws_endpoint_url=aws_endpoint_url,
            region=self.region,
            tables={t.name: names[t.name] for t in DECLARATION.tables},
            buckets={b.name: names[b.name] for b in DECLARATION.buckets},
            queues={q.name: names[q.name] for q in DECLARATION.queues},
            queue_urls={q.name: created[f"{q.name}_url"] for q in DECLARATION.queues},
        )
        self._write_state(self.stack)
        return self.stack

    def add_worker(self, worker: PeriodicWorker) -> None:
        """Register a background job; started with the runtime (or at once if it is running)."""
        self.workers.append(worker)
        if self.stack is not None:
            self._spawn(worker.name, lambda: worker.run(self._stopping))

    def wait(self) -> None:
        """Block until stop() is called (from a signal handler, another thread, or Ctrl-C)."""
        self._stopping.wait()

    def stop(self) -> None:
        """Stop workers, the API and the emulator, and remove local.json. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        deadline = time.monotonic() + 5  # workers are daemons: a busy one does not hold the exit up
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._moto is not None:
            self._moto.stop()
        container.use_endpoint_runtime(None)
        if self.imports is not None:
            self.imports.uninstall(self._hidden)
        state = self.state_dir / STATE_FILE
        if state.exists():
            state.unlink()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"sagewatch-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _write_state(self, stack: LocalStack) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / STATE_FILE
        partial = path.with_suffix(".tmp")
        # The file holds an admin token: readable by its owner only. Written whole, then renamed, so a
        # reader waiting for it never sees half a file.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(json.dumps(asdict(stack), indent=2) + "\n")
        os.replace(partial, path)
