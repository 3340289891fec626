"""Whole lines from a stream cut anywhere (sagewatch.streams.whole_lines), against splitting the whole."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest

from sagewatch.streams import in_parallel, whole_lines


@pytest.mark.parametrize("seed", range(20))
def test_whole_lines_give_back_the_stream_in_whole_lines_with_their_numbers(seed: int) -> None:
    """GIVEN a stream of lines (empty ones, a last one without its line end) cut into pieces anywhere
    WHEN re-cut into whole lines
    THEN the buffers joined are the stream, each ends at a line end (the last may not), and each
    is numbered by the lines before it."""
    rng = random.Random(seed)
    lines = [b"x" * rng.choice([0, 1, 5, 40]) for _ in range(rng.randint(0, 60))]
    stream = b"\n".join(lines) + rng.choice([b"", b"\n"])
    cuts = sorted(rng.sample(range(len(stream) + 1), min(len(stream) + 1, rng.randint(0, 12))))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    found = list(whole_lines(iter(pieces)))
    assert b"".join(buffer for _, buffer in found) == stream
    done = 0
    for number, buffer in found:
        assert number == stream[:done].count(b"\n") + 1
        assert buffer == stream[done : done + len(buffer)]
        done += len(buffer)
    assert all(buffer.endswith(b"\n") for _, buffer in found[:-1])


def test_a_line_longer_than_the_limit_is_skipped_with_its_number() -> None:
    """GIVEN a line longer than the limit between short ones, in small pieces
    WHEN re-cut
    THEN the long line is skipped, its number noted, and the others kept with theirs."""
    stream = b"a\n" + b"y" * 50 + b"\nb\nc\n"
    too_long: list[int] = []
    found = list(whole_lines((stream[i : i + 7] for i in range(0, len(stream), 7)), too_long, max_line=20))
    assert too_long == [2]
    assert b"".join(buffer for _, buffer in found) == b"a\nb\nc\n"
    numbered = stream.split(b"\n")  # the lines after the long one keep their numbers
    assert all(buffer.split(b"\n")[0] == numbered[n - 1] for n, buffer in found)


def test_in_parallel_keeps_the_order_and_at_most_workers_items_in_flight() -> None:
    """GIVEN 30 items mapped on 2 workers, taking longer the earlier they come
    WHEN the results are read one by one
    THEN they come in the items' order, and at most 2 items are in flight (taken, not yet read)."""
    taken: list[int] = []

    def items() -> Iterator[int]:
        for item in range(30):
            taken.append(item)
            yield item

    def slow_double(item: int) -> int:
        time.sleep((30 - item) / 10_000)
        return 2 * item

    results = []
    for result in in_parallel(slow_double, items(), workers=2):
        results.append(result)
        assert len(taken) - len(results) <= 1
    assert results == [2 * item for item in range(30)]
