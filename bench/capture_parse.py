"""Capture parsing speed and memory: our parser against a naive one and against pyarrow's JSON reader.

    python bench/capture_parse.py                 # 1,000,000 inferences per file (about 330 MB of JSONL)
    python bench/capture_parse.py --rows 200000   # quicker
    python bench/capture_parse.py --gigabyte      # also: peak RSS while ingesting a 1 GB file in chunks
    python bench/capture_parse.py --stages        # also: CPU per 8 MB chunk, stage by stage

Three files of the same inferences, by payload kind: every call CSV, every call JSON
(`{"instances": [{"features": [...]}]}` answered with `{"predictions": [{"score": ...}]}`), and the
two mixed as endpoints send them (60% CSV); calls of 1 to 3 rows, some with inferenceIds. For each
file, one line per figure: rows/s of (a) a naive per-line json + csv parser written here for
comparison, (b) sagewatch.capture.parse_capture, (c) pyarrow.json.read_json of the file alone (the
envelope only, no payloads); then ours / naive against the issue's target (CSV >= 6x, JSON >= 4x).
Each figure is measured in its own process (the median of --repeat runs, interleaved), with its
peak RSS. Then, on the mixed file, the cost of anomaly scoring at ingest: parse_capture with every
chunk's rows scored by an isolation forest fitted on 10,000 reference rows like the file's
(sagewatch.metrics.anomaly), as the ingestor writes them; the detector's fit time on those 10,000
rows; and its scoring throughput on parsed rows alone. With --stages, where one thread's CPU goes in
an 8 MB chunk of each file: the envelope, the payloads, the typing of values, beside pyarrow's JSON
read and the naive parser on the same chunk (minimum and median of interleaved runs).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "core"))

from binary_model import binary_model  # noqa: E402

FEATURES = [f"f{i}" for i in range(8)]
CATEGORIES = {"plan": ["basic", "plus", "pro"], "region": ["north", "south", "east", "west"]}


def model():
    inputs = [{"name": n, "value_type": "FLOAT"} for n in FEATURES]
    inputs += [
        {"name": n, "value_type": "STRING", "categorical": True, "categories": c}
        for n, c in CATEGORIES.items()
    ]
    return binary_model(inputs)


def generate(path: Path, rows: int, seed: int = 1, kind: str = "mixed") -> int:
    """Write a capture file of about `rows` inferences; returns the exact count.

    `kind`: "csv" (every call CSV), "json" (every call JSON) or "mixed" (60% CSV, 40% JSON)."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 25, tzinfo=UTC)
    written = 0
    event = 0
    with path.open("w") as out:
        while written < rows:
            size = rng.choice((1, 1, 1, 2, 3))
            values = [
                [round(rng.gauss(0, 1), 6) for _ in FEATURES] + [rng.choice(c) for c in CATEGORIES.values()]
                for _ in range(size)
            ]
            scores = [round(rng.random(), 6) for _ in range(size)]
            if {"csv": True, "json": False}.get(kind, rng.random() < 0.6):
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\n").writerows(values)
                sent = {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": buffer.getvalue(),
                    "encoding": "CSV",
                }
                answer = {
                    "observedContentType": "text/csv; charset=utf-8",
                    "mode": "OUTPUT",
                    "data": "".join(f"{s}\n" for s in scores),
                    "encoding": "CSV",
                }
            else:
                sent = {
                    "observedContentType": "application/json",
                    "mode": "INPUT",
                    "data": json.dumps({"instances": [{"features": v} for v in values]}),
                    "encoding": "JSON",
                }
                answer = {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": json.dumps({"predictions": [{"score": s} for s in scores]}),
                    "encoding": "JSON",
                }
            metadata = {
                "eventId": f"{event:08x}-7c1e-4b2a-9f00-{event:012x}",
                "inferenceTime": (start + timedelta(milliseconds=37 * event))
                .isoformat()
                .replace("+00:00", "Z"),
            }
            if rng.random() < 0.3:
                metadata["inferenceId"] = f"req-{event}"
            out.write(
                json.dumps(
                    {
                        "captureData": {"endpointInput": sent, "endpointOutput": answer},
                        "eventMetadata": metadata,
                        "eventVersion": "0",
                    }
                )
                + "\n"
            )
            written += size
            event += 1
    return written


def naive(path: Path) -> int:
    """What one writes first: json.loads per line, csv / json per payload, a dict per inference."""
    with path.open() as lines:
        return naive_lines(lines)


def naive_lines(lines: Iterable[str]) -> int:
    """The naive parser over lines of text: how many rows it makes."""
    names = FEATURES + list(CATEGORIES)
    rows = []
    for line in lines:
        event = json.loads(line)
        sent, answer = event["captureData"]["endpointInput"], event["captureData"]["endpointOutput"]
        if sent["encoding"] == "CSV":
            inputs = list(csv.reader(io.StringIO(sent["data"])))
            outputs = [float(v) for v in answer["data"].split()]
        else:
            inputs = [i["features"] for i in json.loads(sent["data"])["instances"]]
            outputs = [p["score"] for p in json.loads(answer["data"])["predictions"]]
        base = event["eventMetadata"].get("inferenceId") or event["eventMetadata"]["eventId"]
        when = datetime.fromisoformat(event["eventMetadata"]["inferenceTime"])
        for index, (values, score) in enumerate(zip(inputs, outputs, strict=True)):
            row = {n: (float(v) if n in FEATURES else v) for n, v in zip(names, values, strict=True)}
            row.update(
                partner_inference_id=base if len(inputs) == 1 else f"{base}_{index}",
                inference_timestamp=when,
                score=score,
            )
            rows.append(row)
    return len(rows)


def reference(rows: int = 10_000, seed: int = 2):
    """Reference rows like the file's inputs (seeded), as a pyarrow table."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    columns = {name: rng.normal(0, 1, rows) for name in FEATURES}
    columns |= {name: rng.choice(values, rows) for name, values in CATEGORIES.items()}
    return pa.table(columns)


def fitted():
    """The anomaly detector of the bench model, fitted on reference()."""
    from sagewatch.metrics import anomaly

    return anomaly.fit(reference(), model())


def ours(path: Path, detector=None) -> int:
    """parse_capture over the file in chunks; with a detector, each chunk's rows scored as written."""
    from sagewatch.capture import parse_capture
    from sagewatch.metrics.anomaly import with_scores
    from sagewatch.streams import CHUNK_BYTES, in_parallel, whole_lines

    the_model = model()
    total = 0
    with path.open("rb") as data:
        pieces = iter(lambda: data.read(CHUNK_BYTES), b"")
        chunks = whole_lines(pieces)
        parse = lambda chunk: parse_capture(chunk[1], the_model, source="bench", first_line=chunk[0])  # noqa: E731
        for parsed in in_parallel(parse, chunks):  # as the ingest Lambda does
            assert not parsed.rejected, parsed.rejected[:3]
            rows = parsed.rows
            if detector is not None:  # as SourceWriter.add does, before writing the part
                rows = with_scores(rows, detector.score(rows))
                assert rows.column("anomaly_score").null_count == 0
            total += rows.num_rows
    return total


def envelope_only(path: Path) -> int:
    import pyarrow.json as pa_json

    return pa_json.read_json(path, read_options=pa_json.ReadOptions(block_size=1 << 24)).num_rows


class Figure(NamedTuple):
    """One parser over one file: rows (events for pyarrow), wall seconds, CPU seconds (user +
    system, all threads), peak RSS in MB."""

    count: int
    seconds: float
    cpu: float
    peak: float


def _measure(name: str, path: str, queue: multiprocessing.Queue) -> None:
    function = {"naive": naive, "ours": ours, "scored": ours, "pyarrow": envelope_only}[name]
    # imports (and the detector's fit) are not parsing: done before the clock starts
    if name in ("ours", "scored"):
        import sagewatch.capture
        import sagewatch.handlers.ingest  # noqa: F401

        model()
        import pyarrow as pa
        import pyarrow.compute as pc

        pc.equal(pa.array([1]), 1)  # pyarrow imports pandas at its first compute call: an import
    if name == "scored":
        detector = fitted()
        function = lambda path: ours(path, detector)  # noqa: E731
    elif name == "pyarrow":
        import pyarrow.json  # noqa: F401
    cpu_started = time.process_time()
    started = time.perf_counter()
    count = function(Path(path))
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    queue.put(Figure(count, seconds, cpu, peak_rss_mb()))


def peak_rss_mb() -> float:
    """This process's peak RSS in MB. Linux's VmHWM, the peak of this process's own memory:
    ru_maxrss also counts the parent's memory at the fork before the spawned interpreter's exec (a
    child of a bench holding 600 MB reports at least 600 MB)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(name: str, path: Path) -> Figure:
    """One parser over one file, in a fresh process."""
    queue: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
    process = multiprocessing.get_context("spawn").Process(target=_measure, args=(name, str(path), queue))
    process.start()
    result = Figure(*queue.get())
    process.join()
    return result


def median_figure(runs: list[Figure]) -> Figure:
    """Median wall and CPU seconds of several runs, and the largest peak RSS."""
    return Figure(
        runs[0].count,
        statistics.median(r.seconds for r in runs),
        statistics.median(r.cpu for r in runs),
        max(r.peak for r in runs),
    )


def anomaly_figures() -> tuple[float, float]:
    """(seconds to fit the detector on 10,000 reference rows, rows scored a second), best of three."""
    fits, scores = [], []
    rows = reference(100_000, seed=3)
    for _ in range(3):
        started = time.perf_counter()
        detector = fitted()
        fits.append(time.perf_counter() - started)
        started = time.perf_counter()
        detector.score(rows)
        scores.append(rows.num_rows / (time.perf_counter() - started))
    return min(fits), max(scores)


TARGETS = {"csv": 6.0, "json": 4.0}  # ours / naive in wall time, per payload kind (issue 18)


def kind_figures(path: Path, repeat: int) -> dict[str, Figure]:
    """Naive, ours and pyarrow's envelope read of one file, interleaved so noise hits each alike."""
    runs: dict[str, list[Figure]] = {"naive": [], "ours": [], "pyarrow": []}
    for _ in range(repeat):
        for name, found in runs.items():
            found.append(measure(name, path))
    return {name: median_figure(found) for name, found in runs.items()}


def print_kind(kind: str, results: dict[str, Figure]) -> tuple[float, float]:
    """One line per parser and the ratios; returns ours / naive in wall time and in CPU time."""
    for name, label in (
        ("naive", "naive json+csv parser"),
        ("ours", "sagewatch parse_capture"),
        ("pyarrow", "pyarrow.json.read_json (envelope only)"),
    ):
        figure = results[name]
        unit = "events" if name == "pyarrow" else "inferences"
        print(
            f"  {label:<40} {figure.count / figure.seconds:>12,.0f} {unit}/s  {figure.seconds:7.2f} s  "
            f"CPU {figure.cpu:6.2f} s  peak RSS {figure.peak:6.0f} MB"
        )
    naive, ours = results["naive"], results["ours"]
    ratio = naive.seconds / ours.seconds * ours.count / naive.count
    cpu_ratio = naive.cpu / ours.cpu * ours.count / naive.count
    target = TARGETS.get(kind)
    verdict = f"target >= {target:g}x: {'met' if ratio >= target else 'NOT met'}" if target else "no target"
    print(f"  {'ours / naive (wall time)':<40} {ratio:>12.2f}x  ({verdict})")
    print(f"  {'ours / naive (CPU time)':<40} {cpu_ratio:>12.2f}x")
    envelope = results["pyarrow"]
    print(
        f"  {'our time / pyarrow envelope time':<40} {ours.seconds / envelope.seconds:>12.2f}x  "
        f"(CPU {ours.cpu / envelope.cpu:.2f}x)"
    )
    return ratio, cpu_ratio


STAGES = {  # (module, function) -> label: the stages of parse_capture timed in --stages
    ("sagewatch.capture", "read_jsonl"): "envelope (jsonl.read_jsonl)",
    ("sagewatch.capture", "csv_rows"): "CSV payloads, both sides (csv_rows)",
    ("sagewatch.capture", "json_rows"): "JSON payloads, both sides (json_rows)",
    ("sagewatch.payloads", "_json_text"): "  of which wrapping and quoting (_json_text)",
    ("sagewatch.capture", "_typed"): "typing values (capture._typed)",
}


def stage_figures(path: Path, repeat: int = 5) -> dict[str, list[float]]:
    """CPU seconds per 8 MB chunk (3 whole chunks of the file, one thread) by stage of parse_capture,
    beside pyarrow's JSON read of the chunk and the naive parser, the three interleaved."""
    import functools
    import importlib

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pa_json

    from sagewatch.capture import CAPTURE_SCHEMA, parse_capture
    from sagewatch.streams import CHUNK_BYTES, whole_lines

    pc.equal(pa.array([1]), 1)
    spent: dict[str, float] = {}

    def timed(function, label):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.process_time() - started

        return wrapper

    originals = {(module, name): getattr(importlib.import_module(module), name) for module, name in STAGES}
    for (module, name), label in STAGES.items():
        setattr(importlib.import_module(module), name, timed(originals[module, name], label))
    the_model = model()
    with path.open("rb") as data:
        chunks = list(whole_lines(iter(lambda: data.read(CHUNK_BYTES), b"")))
    chunks = chunks[1:4] if len(chunks) > 3 else chunks  # whole chunks past the first when there are
    options = pa_json.ParseOptions(explicit_schema=CAPTURE_SCHEMA, unexpected_field_behavior="ignore")
    found: dict[str, list[float]] = {}
    for _ in range(repeat):
        spent.clear()
        started = time.process_time()
        for first, chunk in chunks:
            parse_capture(chunk, the_model, source="bench", first_line=first)
        spent["parse_capture, in all"] = time.process_time() - started
        for label, seconds in spent.items():
            found.setdefault(label, []).append(seconds / len(chunks))
        started = time.process_time()
        for _, chunk in chunks:
            pa_json.read_json(pa.BufferReader(chunk), parse_options=options)
        found.setdefault("pyarrow.json.read_json of the chunk", []).append(
            (time.process_time() - started) / len(chunks)
        )
        started = time.process_time()
        for _, chunk in chunks:
            naive_lines(chunk.decode().splitlines())
        found.setdefault("naive parser", []).append((time.process_time() - started) / len(chunks))
    for (module, name), function in originals.items():
        setattr(importlib.import_module(module), name, function)
    return found


def print_stages(kind: str, found: dict[str, list[float]]) -> None:
    print(f"{kind}: CPU per 8 MB chunk, one thread (minimum / median of interleaved runs)")
    order = [*STAGES.values(), "parse_capture, in all"]
    for label, seconds in sorted(found.items(), key=lambda item: [*order, item[0]].index(item[0])):
        print(f"  {label:<50} {min(seconds) * 1e3:6.1f} / {statistics.median(seconds) * 1e3:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each figure (medians are printed)")
    parser.add_argument("--gigabyte", action="store_true", help="also measure peak RSS on a 1 GB file")
    parser.add_argument("--kinds", default="csv,json,mixed", help="payload files to measure")
    parser.add_argument("--stages", action="store_true", help="also: CPU per 8 MB chunk by stage")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    ratios = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for kind in args.kinds.split(","):
            path = paths[kind] = Path(folder) / f"capture-{kind}.jsonl"
            inferences = generate(path, args.rows, kind=kind)
            size_mb = path.stat().st_size / 1e6
            print(
                f"{kind} payloads: {inferences:,} inferences, {size_mb:,.0f} MB (medians of {args.repeat} runs)"
            )
            ratios[kind] = print_kind(kind, kind_figures(path, args.repeat))
            if args.stages:
                print_stages(kind, stage_figures(path))
        print(
            "ours / naive: "
            + ", ".join(f"{kind} {wall:.2f}x (CPU {cpu:.2f}x)" for kind, (wall, cpu) in ratios.items())
            + f"; load average {os.getloadavg()[0]:.1f} at the end"
        )
        if "mixed" in paths:
            path = paths["mixed"]
            plain = median_figure([measure("ours", path) for _ in range(args.repeat)])
            scored = median_figure([measure("scored", path) for _ in range(args.repeat)])
            scored_rate = scored.count / scored.seconds
            print(
                f"{'mixed: parse_capture + anomaly scores':<42} {scored_rate:>12,.0f} inferences/s  "
                f"{scored.seconds:7.2f} s  peak RSS {scored.peak:6.0f} MB  "
                f"({scored_rate / (plain.count / plain.seconds):.0%} of the rate without scores)"
            )
            fit_seconds, score_rate = anomaly_figures()
            print(f"{'detector fit on 10,000 reference rows':<42} {fit_seconds:>12.2f} s")
            print(f"{'scoring alone (100,000 rows)':<42} {score_rate:>12,.0f} rows/s")
        if args.gigabyte:
            big = Path(folder) / "capture-1gb.jsonl"
            with big.open("wb") as out:
                chunk = paths.get("mixed", next(iter(paths.values()))).read_bytes()
                while out.tell() < 1_000_000_000:
                    out.write(chunk)
            del chunk  # the bench's own memory is no part of the figure
            figure = measure("ours", big)
            print(
                f"{'1 GB file in chunks: peak RSS':<42} {figure.peak:>12.0f} MB  ({figure.count:,} inferences, "
                f"{figure.seconds:.1f} s; target <= 512 MB: {'met' if figure.peak <= 512 else 'NOT met'})"
            )


if __name__ == "__main__":
    main()
