"""The evaluator gives the memory a model's evaluation freed back to the system (a warm Lambda
container would otherwise start the next model from this one's peak: docs/scale.md)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from sagewatch.handlers import evaluator as evaluator_handler

STATM = Path("/proc/self/statm")


def resident_mb() -> float:
    return int(STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(
    not STATM.exists() or getattr(evaluator_handler._LIBC, "malloc_trim", None) is None,
    reason="glibc's malloc_trim and /proc: Linux, as in Lambda",
)
def test_memory_a_run_freed_is_given_back_to_the_system() -> None:
    # GIVEN 300 MB allocated in pieces malloc keeps in its heap (as a run's decoding does), all but
    # one in 16 freed (the ones held between them keep malloc from shrinking its heap), and pyarrow
    # buffers allocated and freed
    pieces = [bytes(np.full(32 * 1024, n % 251, dtype=np.uint8)) for n in range(9600)]
    held = pieces[::16]
    columns = [pa.array(np.arange(4_000_000) + n) for n in range(8)]
    before = resident_mb()
    del pieces, columns
    freed = resident_mb()

    # WHEN the evaluator gives memory back (as it does after each model)
    evaluator_handler.release_memory()

    # THEN most of what was freed leaves the process's resident set
    after = resident_mb()
    assert freed - after > 200, (before, freed, after)
    assert len(held) == 600


def test_giving_memory_back_is_harmless_without_malloc_trim(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a C library without malloc_trim (macOS, musl), or none loaded
    for libc in (object(), None):
        monkeypatch.setattr(evaluator_handler, "_LIBC", libc)
        # WHEN memory is given back, THEN nothing fails
        evaluator_handler.release_memory()


def test_memory_is_given_back_after_each_model_even_when_its_evaluation_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an evaluation that fails
    given_back = []
    monkeypatch.setattr(evaluator_handler, "release_memory", lambda: given_back.append(True))

    def failing(*_: object) -> None:
        raise RuntimeError("the lake is down")

    monkeypatch.setattr(evaluator_handler, "_evaluate", failing)

    # WHEN the handler evaluates a message's model, THEN it fails and memory was given back
    with pytest.raises(RuntimeError):
        evaluator_handler.evaluate_record(object())  # type: ignore[arg-type]
    assert given_back == [True]
