"""Capture parsing speed and memory: our parser against a naive one and against pyarrow's JSON reader.

    python bench/capture_parse.py                 # 1,000,000 inferences per file (about 330 MB of JSONL)
    python bench/capture_parse.py --rows 200000   # quicker
    python bench/capture_parse.py --gigabyte      # also: peak RSS while ingesting a 1 GB file in chunks

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
rows; and its scoring throughput on parsed rows alone.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import multiprocessing
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    names = FEATURES + list(CATEGORIES)
    rows = []
    with path.open() as lines:
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


def _measure(name: str, path: str, queue: multiprocessing.Queue) -> None:
    function = {"naive": naive, "ours": ours, "scored": ours, "pyarrow": envelope_only}[name]
    # imports (and the detector's fit) are not parsing: done before the clock starts
    if name in ("ours", "scored"):
        import sagewatch.capture
        import sagewatch.handlers.ingest  # noqa: F401

        model()
    if name == "scored":
        detector = fitted()
        function = lambda path: ours(path, detector)  # noqa: E731
    elif name == "pyarrow":
        import pyarrow.json  # noqa: F401
    started = time.perf_counter()
    count = function(Path(path))
    seconds = time.perf_counter() - started
    queue.put((count, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def measure(name: str, path: Path) -> tuple[int, float, float]:
    """(rows, seconds, peak RSS in MB) of one parser, in a fresh process."""
    queue: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
    process = multiprocessing.get_context("spawn").Process(target=_measure, args=(name, str(path), queue))
    process.start()
    result = queue.get()
    process.join()
    return result


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


TARGETS = {"csv": 6.0, "json": 4.0}  # ours / naive, per payload kind (issue 18)


def measure_median(name: str, path: Path, repeat: int) -> tuple[int, float, float]:
    """measure() `repeat` times: (rows, median seconds, largest peak RSS in MB)."""
    runs = [measure(name, path) for _ in range(repeat)]
    return runs[0][0], statistics.median(r[1] for r in runs), max(r[2] for r in runs)


def kind_figures(kind: str, path: Path, repeat: int) -> dict[str, tuple[int, float, float]]:
    """Naive, ours and pyarrow's envelope read of one file, interleaved so noise hits each alike."""
    runs: dict[str, list[tuple[int, float, float]]] = {"naive": [], "ours": [], "pyarrow": []}
    for _ in range(repeat):
        for name, found in runs.items():
            found.append(measure(name, path))
    return {
        name: (found[0][0], statistics.median(r[1] for r in found), max(r[2] for r in found))
        for name, found in runs.items()
    }


def print_kind(kind: str, results: dict[str, tuple[int, float, float]]) -> float:
    """One line per parser and the ratios; returns ours / naive."""
    for name, label in (
        ("naive", "naive json+csv parser"),
        ("ours", "sagewatch parse_capture"),
        ("pyarrow", "pyarrow.json.read_json (envelope only)"),
    ):
        count, seconds, peak = results[name]
        unit = "events" if name == "pyarrow" else "inferences"
        print(f"  {label:<40} {count / seconds:>12,.0f} {unit}/s  {seconds:7.2f} s  peak RSS {peak:6.0f} MB")
    naive_rate = results["naive"][0] / results["naive"][1]
    ratio = results["ours"][0] / results["ours"][1] / naive_rate
    target = TARGETS.get(kind)
    verdict = f"target >= {target:g}x: {'met' if ratio >= target else 'NOT met'}" if target else "no target"
    print(f"  {'ours / naive':<40} {ratio:>12.2f}x  ({verdict})")
    print(f"  {'our time / pyarrow envelope time':<40} {results['ours'][1] / results['pyarrow'][1]:>12.2f}x")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each figure (medians are printed)")
    parser.add_argument("--gigabyte", action="store_true", help="also measure peak RSS on a 1 GB file")
    parser.add_argument("--kinds", default="csv,json,mixed", help="payload files to measure")
    args = parser.parse_args()
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
            ratios[kind] = print_kind(kind, kind_figures(kind, path, args.repeat))
        print("ours / naive: " + ", ".join(f"{kind} {ratio:.2f}x" for kind, ratio in ratios.items()))
        if "mixed" in paths:
            path = paths["mixed"]
            ours = measure_median("ours", path, args.repeat)
            our_rate = ours[0] / ours[1]
            scored = measure_median("scored", path, args.repeat)
            scored_rate = scored[0] / scored[1]
            print(
                f"{'mixed: parse_capture + anomaly scores':<42} {scored_rate:>12,.0f} inferences/s  "
                f"{scored[1]:7.2f} s  peak RSS {scored[2]:6.0f} MB  "
                f"({scored_rate / our_rate:.0%} of the rate without scores)"
            )
            fit_seconds, score_rate = anomaly_figures()
            print(f"{'detector fit on 10,000 reference rows':<42} {fit_seconds:>12.2f} s")
            print(f"{'scoring alone (100,000 rows)':<42} {score_rate:>12,.0f} rows/s")
        if args.gigabyte:
            big = Path(folder) / "capture-1gb.jsonl"
            with big.open("wb") as out:
                chunk = (
                    paths[next(iter(paths))].read_bytes()
                    if "mixed" not in paths
                    else paths["mixed"].read_bytes()
                )
                while out.tell() < 1_000_000_000:
                    out.write(chunk)
            count, seconds, peak = measure("ours", big)
            print(
                f"{'1 GB file in chunks: peak RSS':<42} {peak:>12.0f} MB  ({count:,} inferences, {seconds:.1f} s; "
                f"target <= 512 MB: {'met' if peak <= 512 else 'NOT met'})"
            )


if __name__ == "__main__":
    main()
