"""Byte streams as whole lines: cutting at line ends, gunzipping on the way, bounded in memory.

SageMaker Data Capture files and Model Monitor ground truth are JSON Lines, uploaded or read from S3
in chunks; a chunk rarely ends where a line does. These functions re-cut any byte stream into
buffers of whole lines, so parsers see complete lines, and keep memory bounded whatever the input
(a gzip bomb, a line without end). `in_parallel` maps a function over chunks, a few at a time.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

CHUNK_BYTES = 8 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
# A Data Capture line holds at most a 6 MB request and a 6 MB response, base64: 16 MB.
MAX_LINE_BYTES = 32 * 1024 * 1024
T = TypeVar("T")
R = TypeVar("R")


def in_parallel(function: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> Iterator[R]:
    """function(item) for each item, in order, `workers` at a time (pyarrow's kernels release the
    GIL). At most `workers` items are in flight, which keeps memory bounded."""
    workers = workers or min(4, os.cpu_count() or 1)
    if workers == 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class Lines:
    """The whole-line chunks of a byte stream, gunzipped when it is gzip (several members allowed).

    Decompression is bounded (at most CHUNK_BYTES out per step, so a gzip bomb cannot fill
    memory). A corrupt or truncated gzip stream ends the lines where it breaks and says why in
    `broken`, so what came before is still ingested and the rest is reported, not lost silently.
    """

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self.broken: str | None = None
        self.too_long: list[int] = []  # numbers of lines longer than MAX_LINE_BYTES, skipped
        self._lines = whole_lines(self._plain(iter(pieces)), self.too_long)

    def rejections(self) -> list[dict[str, Any]]:
        """What could not be cut into lines, as rejected entries."""
        limit = f"{MAX_LINE_BYTES // 2**20} MB"
        found = [{"line": n, "reason": f"the line is longer than {limit}"} for n in self.too_long]
        return found + ([{"line": None, "reason": self.broken}] if self.broken else [])

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return self._lines

    def __next__(self) -> tuple[int, bytes]:
        return next(self._lines)

    def _plain(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        first = next(pieces, b"")
        if not first.startswith(GZIP_MAGIC):
            if first:
                yield first
            yield from pieces
            return
        decompressor, fed, produced = zlib.decompressobj(wbits=31), False, 0
        try:
            for piece in chain(first, pieces):
                data = piece
                while data:
                    out = decompressor.decompress(data, CHUNK_BYTES)
                    fed = True
                    produced += len(out)
                    if out:
                        yield out
                    data = decompressor.unconsumed_tail
                    if decompressor.eof:  # another gzip member may follow
                        data = decompressor.unused_data + data
                        decompressor, fed = zlib.decompressobj(wbits=31), False
        except zlib.error as error:
            self.broken = f"the gzip stream is corrupt after {produced} decompressed bytes ({error})"
            return
        if fed and not decompressor.eof:
            yield decompressor.flush()
            self.broken = f"the gzip stream is truncated after {produced} decompressed bytes"


def whole_lines(
    pieces: Iterable[bytes], too_long: list[int] | None = None, max_line: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """Re-cut a byte stream at line ends: (number of the first line, buffer of whole lines).

    A line longer than `max_line` (default MAX_LINE_BYTES) is skipped, not accumulated: its number
    goes to `too_long`, so a stream without line ends (a gzip bomb of one line) keeps memory bounded.
    """
    max_line = MAX_LINE_BYTES if max_line is None else max_line
    carry = b""
    line = 1
    skipping = False
    for piece in pieces:
        if skipping:  # inside an over-long line: drop bytes up to its end
            end = piece.find(b"\n")
            if end < 0:
                continue
            piece, skipping, line = piece[end + 1 :], False, line + 1
        if carry and len(carry) + max(piece.find(b"\n"), 0) > max_line and b"\n" in piece:
            # the line begun in earlier pieces ends in this one, past the limit: drop it whole
            if too_long is not None:
                too_long.append(line)
            piece, carry, line = piece[piece.find(b"\n") + 1 :], b"", line + 1
        cut = piece.rfind(b"\n") + 1
        if cut == 0:
            carry = carry + piece
            if len(carry) > max_line:
                if too_long is not None:
                    too_long.append(line)
                carry, skipping = b"", True
            continue
        # one copy at most: the carried bytes and the piece up to its last line end, joined
        whole = piece if cut == len(piece) and not carry else b"".join((carry, memoryview(piece)[:cut]))
        carry = piece[cut:]
        yield line, whole
        line += whole.count(b"\n")
    if skipping:
        return
    if len(carry) > max_line:
        if too_long is not None:
            too_long.append(line)
    elif carry.strip():
        yield line, carry


def is_ground_truth(buffer: bytes, lines: int = 100) -> bool:
    """Whether a file holds Model Monitor ground truth: its first line that is a JSON object with
    `groundTruthData` or `captureData` says (junk lines before it are passed over)."""
    for text in buffer.split(b"\n", lines)[:lines]:
        if not text.strip():
            continue
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(document, dict) and ("groundTruthData" in document or "captureData" in document):
            return "groundTruthData" in document
    return False


def chain(first: T, rest: Iterator[T]) -> Iterator[T]:
    """`first`, then the rest."""
    yield first
    yield from rest
