"""The local runtime in-process: background workers tick until it stops, and survive failures."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagewatch import container
from sagewatch.local.runtime import LocalRuntime, LocalStack, PeriodicWorker


@pytest.fixture
def restored_environment() -> Iterator[None]:
    """The runtime points this process's environment at its emulator; put it back afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    container.reset()


@pytest.mark.usefixtures("restored_environment")
def test_workers_tick_keep_going_after_a_failure_and_stop_with_the_runtime(tmp_path: Path) -> None:
    ticks: list[float] = []
    ticked_twice_after_failure = threading.Event()

    def tick() -> None:
        ticks.append(time.monotonic())
        if len(ticks) == 1:
            raise RuntimeError("first tick fails")
        if len(ticks) >= 3:
            ticked_twice_after_failure.set()

    worker = PeriodicWorker("poller", 0.05, tick)
    runtime = LocalRuntime(state_dir=tmp_path, api_port=0, aws_port=0, workers=[worker])
    stack = runtime.start()
    try:
        assert LocalStack.read(tmp_path) == stack
        assert ticked_twice_after_failure.wait(timeout=10)
        assert [str(e) for e in worker.errors] == ["first tick fails"]
    finally:
        runtime.stop()
    count = len(ticks)
    time.sleep(0.3)
    assert len(ticks) == count, "a worker kept running after stop()"
    assert not (tmp_path / "local.json").exists()
