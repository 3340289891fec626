"""Background jobs of the local runtime: the queue pollers and the evaluator timer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class PeriodicWorker:
    """A background job of the runtime: `tick` runs every `interval_seconds` until the runtime stops.

    The queue pollers (ingest) and the evaluator timer are workers of this kind.
    """

    name: str
    interval_seconds: float
    tick: Callable[[], None]
    errors: list[BaseException] = field(default_factory=list)

    def run(self, stopping: threading.Event) -> None:
        """Run `tick` every interval until `stopping` is set; a failing tick is recorded and printed."""
        while not stopping.wait(self.interval_seconds):
            try:
                self.tick()
            except Exception as error:  # a failing tick is reported and retried, never fatal
                self.errors.append(error)
                print(f"[sagewatch local] {self.name}: {type(error).__name__}: {error}", flush=True)
