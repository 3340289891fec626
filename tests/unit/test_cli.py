"""The command line's answers when it cannot run: one line on stderr, exit code 1, no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sagewatch import container
from sagewatch.client.cli import main
from sagewatch.resources import DECLARATION


def test_evaluate_with_only_the_tokens_table_set_says_which_setting_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in DECLARATION.env_vars().values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(DECLARATION.table("tokens").env_var, "sagewatch-tokens")
    container.reset()
    assert main(["evaluate", "--now"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "SAGEWATCH_MODELS_TABLE is not set" in err and "Traceback" not in err


def one_line_refusal(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI; it must refuse with exit code 1 and one line on stderr, no traceback."""
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("url", "token"), [("notaurl", "t"), ("http://[::1", "t"), ("http://127.0.0.1:9", "bad\ntoken")]
)
def test_a_malformed_url_or_token_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, token: str
) -> None:
    monkeypatch.setenv("SAGEWATCH_URL", url)
    monkeypatch.setenv("SAGEWATCH_TOKEN", token)
    assert "cannot call" in one_line_refusal(capsys, ["models", "list"])


@pytest.mark.parametrize("content", ["garbage", "{}", "[]"])
@pytest.mark.parametrize("command", [["models", "list"], ["token", "list"]])
def test_a_corrupt_state_file_is_one_line_saying_to_remove_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    content: str,
    command: list[str],
) -> None:
    for variable in ("SAGEWATCH_URL", "SAGEWATCH_TOKEN", *DECLARATION.env_vars().values()):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "local.json").write_text(content)
    err = one_line_refusal(capsys, [*command, "--state-dir", str(tmp_path)])
    assert "is not a state file of `sagewatch local`" in err


def test_a_taken_port_is_one_line_naming_the_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """moto's server only logged it and the command hung."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = one_line_refusal(
            capsys, ["local", "--aws-port", str(port), "--port", "0", "--state-dir", str(tmp_path)]
        )
    assert f"--aws-port {port}: the port is taken" in err


def test_a_command_group_without_its_action_shows_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 2
    assert "show a model by id or partner_model_id" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("churn-endpoint", "NAME=MODULE:FUNCTION"),
        ("churn-endpoint=no_such_module_here:predict", "No module named"),
        ("churn-endpoint=tests.endpoint_model", "module:function"),
        ("churn-endpoint=tests.endpoint_model:no_such", "has no function"),
    ],
)
def test_a_served_endpoint_that_cannot_be_loaded_is_one_line_before_anything_starts(
    capsys: pytest.CaptureFixture[str], spec: str, says: str
) -> None:
    err = one_line_refusal(capsys, ["local", "--serve-endpoint", spec, "--state-dir", "/nonexistent/x"])
    assert says in err
