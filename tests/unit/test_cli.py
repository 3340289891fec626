"""The command line's answers when it cannot run: one line on stderr, exit code 1, no traceback."""

from __future__ import annotations

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
