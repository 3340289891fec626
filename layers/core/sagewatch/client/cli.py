"""The `sagewatch` command: local stack, demo, tokens, models, OpenAPI document."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sagewatch import __version__, container
from sagewatch.auth import Role
from sagewatch.client import SageWatch, SageWatchError
from sagewatch.client.demo import run_demo
from sagewatch.errors import InvalidInput, ModelNotFound, SagewatchError
from sagewatch.handlers.openapi import openapi_document
from sagewatch.local.endpoints import Predict, load_predict, serve
from sagewatch.local.runtime import LocalRuntime, LocalStack, StateFileError
from sagewatch.resources import DECLARATION
from sagewatch.services.evaluation import as_dict
from sagewatch.settings import MissingSetting


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 done; 1 sagewatch or its API refused (the reason on stderr); 2 bad usage."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):  # a command group without its action: that group's help
        getattr(args, "group", parser).print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if isinstance(error, MissingSetting):
            print(
                f"sagewatch: {error} Set every SAGEWATCH_* variable the deployed functions have "
                "(docs/deploy.md), or use a local stack (--state-dir).",
                file=sys.stderr,
            )
            return 1
        if isinstance(error, BotoCoreError | ClientError):
            print(f"sagewatch: AWS refused: {error}", file=sys.stderr)
            return 1
        if isinstance(error, SagewatchError | SageWatchError | OSError | StateFileError):
            print(f"sagewatch: {error}", file=sys.stderr)
            return 1
        raise


def port(text: str) -> int:
    """A TCP port number for argparse (0: any free port)."""
    number = int(text)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{number} is not a port (0 to 65535)")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sagewatch", description="Self-hosted ML model monitoring on AWS.")
    parser.add_argument("--version", action="version", version=f"sagewatch {__version__}")
    commands = parser.add_subparsers(metavar="COMMAND")

    local = commands.add_parser("local", help="run the whole platform on loopback (moto server)")
    local.add_argument("--port", type=port, default=8080, help="REST API port (0: any free port)")
    local.add_argument("--aws-port", type=port, default=5000, help="moto server port (0: any free port)")
    local.add_argument("--state-dir", default=".sagewatch", help="where local.json is written")
    local.add_argument("--region", default="us-east-1")
    local.add_argument(
        "--sql-rows",
        type=int,
        default=None,
        metavar="ROWS",
        help="queries over windows of more rows run in DuckDB, Athena's stand-in (default: the deployed limit)",
    )
    local.add_argument(
        "--evaluate-every",
        type=float,
        default=300,
        metavar="SECONDS",
        help="how often the evaluator runs, as the EventBridge schedule does (0: never)",
    )
    local.add_argument(
        "--serve-endpoint",
        action="append",
        default=[],
        metavar="NAME=MODULE:FUNCTION",
        help="serve a Python predict function (rows as a 2-D array in, one score per row out) as the "
        "SageMaker endpoint NAME, tagged for sagewatch, so explanations can call it; repeatable",
    )
    local.set_defaults(run=_local)

    evaluate = commands.add_parser("evaluate", help="evaluate alert rules now (every model, or one)")
    evaluate.add_argument("--now", action="store_true", help="run at once (the only mode; for clarity)")
    evaluate.add_argument("--model", help="a model id or partner_model_id")
    evaluate.add_argument("--state-dir", default=".sagewatch", help="local stack to use when not deployed")
    evaluate.set_defaults(run=_evaluate)

    demo = commands.add_parser("demo", help="start the local stack and register a model from real data")
    demo.add_argument("--keep-running", action="store_true", help="leave the stack up afterwards")
    demo.add_argument("--state-dir", default=".sagewatch")
    demo.add_argument("--port", type=port, default=0)
    demo.add_argument("--aws-port", type=port, default=0)
    demo.add_argument(
        "--hours", type=int, default=8, help="simulated hours of traffic (the shift comes half-way)"
    )
    demo.add_argument("--calls-per-hour", type=int, default=100)
    demo.set_defaults(run=_demo)

    openapi = commands.add_parser("openapi", help="print the OpenAPI document of the REST API")
    openapi.set_defaults(run=_openapi)

    token_group = commands.add_parser("token", help="API tokens: create, list, rotate, revoke")
    token_group.set_defaults(group=token_group)
    token = token_group.add_subparsers(metavar="ACTION")
    create = token.add_parser("create", help="create a token (printed once)")
    create.add_argument("--role", choices=["reader", "writer", "admin"], default="reader")
    create.add_argument("--description", default="")
    create.set_defaults(run=_token_create)
    token.add_parser("list", help="list tokens (never the tokens themselves)").set_defaults(run=_token_list)
    rotate = token.add_parser("rotate", help="new secret for a token id; the old one stops working")
    rotate.add_argument("token_id")
    rotate.set_defaults(run=_token_rotate)
    revoke = token.add_parser("revoke", help="revoke a token id")
    revoke.add_argument("token_id")
    revoke.set_defaults(run=_token_revoke)
    for sub in (create, rotate, revoke, token.choices["list"]):
        sub.add_argument("--state-dir", default=".sagewatch", help="local stack to use when not deployed")

    models_group = commands.add_parser("models", help="registered models")
    models_group.set_defaults(group=models_group)
    models = models_group.add_subparsers(metavar="ACTION")
    listing = models.add_parser("list", help="list models")
    listing.add_argument("--include-archived", action="store_true")
    listing.set_defaults(run=_models_list)
    show = models.add_parser("show", help="show a model by id or partner_model_id")
    show.add_argument("model")
    show.set_defaults(run=_models_show)

    status = commands.add_parser("status", help="what a model has received: counts, labels, latest inference")
    status.add_argument("model", help="id or partner_model_id")
    status.set_defaults(run=_status)

    alerts_group = commands.add_parser("alerts", help="alerts raised by the rules")
    alerts_group.set_defaults(group=alerts_group)
    alerts = alerts_group.add_subparsers(metavar="ACTION")
    alert_list = alerts.add_parser("list", help="list alerts, newest first")
    alert_list.add_argument("--model", help="id or partner_model_id")
    alert_list.add_argument("--status", choices=["new", "acknowledged", "resolved"])
    alert_list.set_defaults(run=_alerts_list)
    alert_show = alerts.add_parser("show", help="one alert")
    alert_show.add_argument("alert_id")
    alert_show.set_defaults(run=_alerts_show)
    alert_set = alerts.add_parser("set", help="acknowledge or resolve an alert")
    alert_set.add_argument("alert_id")
    alert_set.add_argument("status", choices=["new", "acknowledged", "resolved"])
    alert_set.set_defaults(run=_alerts_set)

    variants = commands.add_parser(
        "variants", help="a model's variants: traffic share, role; --role sets one"
    )
    variants.add_argument("model", help="id or partner_model_id")
    variants.add_argument("--role", nargs=2, metavar=("VARIANT", "ROLE"), help="give VARIANT the role ROLE")
    variants.set_defaults(run=_variants)
    compare = commands.add_parser("compare", help="is the challenger better? both variants' metrics, tested")
    compare.add_argument("model", help="id or partner_model_id")
    compare.add_argument("--challenger", required=True)
    compare.add_argument("--champion", help="default: the variant whose role is champion")
    compare.add_argument(
        "--start", type=datetime.fromisoformat, help="window start (ISO 8601; default: all rows)"
    )
    compare.add_argument("--end", type=datetime.fromisoformat, help="window end (ISO 8601)")

    compare.set_defaults(run=_compare)

    for sub in (listing, show, status, alert_list, alert_show, alert_set, variants, compare):
        sub.add_argument("--state-dir", default=".sagewatch", help="local stack (else SAGEWATCH_URL/TOKEN)")
        sub.add_argument("--json", action="store_true", help="machine-readable output")
    token.choices["list"].add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Rows as aligned columns, for people."""
    if not rows:
        print("(none)")
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _out(
    args: argparse.Namespace,
    data: Any,
    rows: list[dict[str, Any]] | None = None,
    columns: list[str] | None = None,
) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    elif rows is not None and columns is not None:
        _table(rows, columns)
    else:
        print(json.dumps(data, indent=2, default=str))


def _local(args: argparse.Namespace) -> int:
    served = [_endpoint_spec(spec) for spec in args.serve_endpoint]  # refused before anything starts
    runtime = LocalRuntime(
        state_dir=args.state_dir,
        api_port=args.port,
        aws_port=args.aws_port,
        region=args.region,
        evaluate_every_seconds=args.evaluate_every or None,
        lambda_imports=True,  # the handlers find only what the Lambda layers ship
        sql_rows=args.sql_rows,
    )
    stack = runtime.start()
    for name, predict in served:
        serve(name, predict)
    # SIGTERM stops as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"sagewatch local is running\n  dashboard: {stack.api_url}/ (sign in with the token)")
    print(f"  API:   {stack.api_url}\n  AWS:   {stack.aws_endpoint_url}")
    print(f"  token: {stack.token} (admin)\n  state: {os.path.join(args.state_dir, 'local.json')}")
    print("Ctrl-C stops it.", flush=True)
    try:
        runtime.wait()
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()
        print("sagewatch local stopped", flush=True)
    return 0


def _endpoint_spec(spec: str) -> tuple[str, Predict]:
    """NAME=MODULE:FUNCTION as the endpoint's name and its imported predict function."""
    name, _, function = spec.partition("=")
    if not name or not function:
        raise InvalidInput(f"--serve-endpoint {spec!r}: give NAME=MODULE:FUNCTION")
    try:
        return name, load_predict(function)
    except (ImportError, ValueError) as error:
        raise InvalidInput(f"--serve-endpoint {spec!r}: {error}") from None


def _demo(args: argparse.Namespace) -> int:
    run_demo(
        state_dir=args.state_dir,
        keep_running=args.keep_running,
        api_port=args.port,
        aws_port=args.aws_port,
        hours=args.hours,
        calls_per_hour=args.calls_per_hour,
    )
    return 0


def _openapi(args: argparse.Namespace) -> int:
    print(openapi_document())
    return 0


def _connect(args: argparse.Namespace) -> None:
    """Point the stores at the deployed tables when SAGEWATCH_TOKENS_TABLE is set (AWS credentials
    as usual), else at the local stack of --state-dir."""

    if DECLARATION.table("tokens").env_var not in os.environ:
        os.environ.update(LocalStack.read(args.state_dir).environment)
        container.reset()


def _token_store(args: argparse.Namespace) -> Any:
    _connect(args)
    return container.token_store()


def _evaluate(args: argparse.Namespace) -> int:
    _connect(args)
    if args.model:
        try:
            models = [container.model_store().get(args.model)]
        except ModelNotFound:
            models = [container.model_store().get_by_partner_id(args.model)]
    else:
        models = container.model_store().list()
    failed = False
    for model in models:
        report = as_dict(container.evaluator().evaluate_model(model.id))
        failed |= bool(report["errors"])
        print(
            f"{model.partner_model_id}: {report['rules']} rules, {len(report['alerts'])} new alerts, "
            f"{report['sent']} notifications sent, {report['pending']} pending"
        )
        for alert_id in report["alerts"]:
            print(f"  alert {alert_id}")
        for error in report["errors"]:
            print(f"  error: {error}")
    return 1 if failed else 0


def _print_token(record: Any, token: str | None = None) -> None:
    print(f"{record.token_id}  {record.role.value:<6}  created {record.created_at}", end="")
    print(f"  revoked {record.revoked_at}" if record.revoked_at else "", end="")
    print(f"  {record.description}" if record.description else "")
    if token:
        print(f"token: {token}\n(shown once: store it now)")


def _token_create(args: argparse.Namespace) -> int:
    record, token = _token_store(args).create(Role(args.role), description=args.description)
    _print_token(record, token)
    return 0


def _token_list(args: argparse.Namespace) -> int:
    records = _token_store(args).list()
    if args.json:
        _out(
            args,
            [
                {
                    "token_id": r.token_id,
                    "role": r.role.value,
                    "description": r.description,
                    "created_at": r.created_at,
                    "rotated_at": r.rotated_at,
                    "revoked_at": r.revoked_at,
                }
                for r in records
            ],
        )
        return 0
    for record in records:
        _print_token(record)
    return 0


def _token_rotate(args: argparse.Namespace) -> int:
    record, token = _token_store(args).rotate(args.token_id)
    _print_token(record, token)
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    _print_token(_token_store(args).revoke(args.token_id))
    return 0


def _client(args: argparse.Namespace) -> Any:
    return SageWatch(state_dir=args.state_dir)


def _models_list(args: argparse.Namespace) -> int:
    models = list(_client(args).iter_models(include_archived=args.include_archived))
    rows = [{**m, "state": "archived" if m["archived"] else "active"} for m in models]
    _out(args, models, rows, ["id", "partner_model_id", "output_type", "display_name", "state"])
    return 0


def _models_show(args: argparse.Namespace) -> int:
    model = _client(args).find_model(args.model)
    if args.json:
        _out(args, model)
        return 0
    print(
        f"{model['display_name']}  ({model['partner_model_id']}, id {model['id']}, {model['output_type']}, "
        f"{model['status']})"
    )
    _table(model["attributes"], ["name", "stage", "value_type", "categorical", "position"])
    return 0


def _variants(args: argparse.Namespace) -> int:
    client = _client(args)
    model_id = client.find_model(args.model)["id"]
    if args.role:
        client.set_variant_role(model_id, args.role[0], args.role[1])
    found = client.variants(model_id)
    rows = [{**v, "share": None if v["share"] is None else f"{v['share']:.1%}"} for v in found]
    _out(args, found, rows, ["variant", "role", "inferences", "share", "first_inference", "latest_inference"])
    return 0


def _compare(args: argparse.Namespace) -> int:
    client = _client(args)
    answer = client.compare_variants(
        client.find_model(args.model)["id"], args.challenger, args.champion, args.start, args.end
    )
    if args.json:
        _out(args, answer)
        return 0
    pairs = f", paired on {answer['pairs']} requests" if answer["paired"] else ""
    print(
        f"champion {answer['champion']} ({answer['champion_labelled']} labelled) against challenger "
        f"{answer['challenger']} ({answer['challenger_labelled']} labelled){pairs}"
    )
    rows = [
        {
            **m,
            "difference": None if m["difference"] is None else f"{m['difference']:+.4g}",
            "interval": "[" + ", ".join("-" if v is None else f"{v:+.4g}" for v in m["interval"]) + "]",
            "p_value": None if m["p_value"] is None else f"{m['p_value']:.3g}",
        }
        for m in answer["metrics"]
    ]
    _table(rows, ["metric", "champion", "challenger", "difference", "interval", "test", "p_value"])
    print(f"verdict: {answer['verdict']} ({answer['reason']})")
    return 0


def _status(args: argparse.Namespace) -> int:
    client = _client(args)
    status = client.status(client.find_model(args.model)["id"])
    if args.json:
        _out(args, status)
        return 0
    rows = [{"kind": kind, **status[kind]} for kind in ("inferences", "ground_truth")]
    _table(rows, ["kind", "ingested", "rejected", "files", "latest_timestamp"])
    ratio = status["labelled_ratio"]
    print(
        f"distinct inferences {status['total']}, duplicates {status['duplicates']}, "
        f"labelled {status['with_ground_truth']} ({'-' if ratio is None else f'{ratio:.1%}'})"
    )
    return 0


def _alerts_list(args: argparse.Namespace) -> int:
    client = _client(args)
    model_id = client.find_model(args.model)["id"] if args.model else None
    alerts = client.list_alerts(model_id=model_id, status=args.status)
    _out(
        args,
        alerts,
        alerts,
        ["id", "severity", "status", "rule_name", "metric_value", "threshold", "window_start"],
    )
    return 0


def _alerts_show(args: argparse.Namespace) -> int:
    alert = _client(args).request("GET", f"/api/v3/alerts/{args.alert_id}")
    if args.json:
        _out(args, alert)
        return 0
    print(alert["message"])
    for key in (
        "id",
        "severity",
        "status",
        "rule_name",
        "metric_value",
        "threshold",
        "window_start",
        "window_end",
        "batch_id",
        "notifications",
    ):
        print(f"  {key:<14} {_cell(alert.get(key))}")
    return 0


def _alerts_set(args: argparse.Namespace) -> int:
    alert = _client(args).update_alert(args.alert_id, args.status)
    _out(args, alert, [alert], ["id", "status", "rule_name"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
