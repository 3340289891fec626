"""One synthesis of the whole CDK app per test session (layers are built once and cached in build/)."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template
from tests.infra.synthesis import STACKS, Synthesized, synthesize


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def templates(synthesized: Synthesized) -> dict[str, Template]:
    return {short: synthesized.template(short) for short in STACKS}
