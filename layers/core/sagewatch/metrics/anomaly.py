"""Anomaly detection: an isolation forest fitted on a model's reference set scores each inference.

The forest is Liu, Ting and Zhou's (2008), as scikit-learn's IsolationForest builds it: TREES trees,
each grown on SAMPLE_SIZE reference rows drawn without replacement, splitting a node on a random
input (one that is not constant in the node) at a uniform random value between the node's min and
max (`x <= threshold` goes left), down to ceil(log2(sample size)) levels. A row's path length in a
tree is the depth of its leaf plus c(n) for the n sample rows the leaf held; its score is
2 ** (-mean path length / c(sample size)), in (0, 1]: near 1 isolated quickly (anomalous), below 0.5
ordinary. c(n) = 2 H(n - 1) - 2 (n - 1) / n is the mean path length of an unsuccessful search in a
binary search tree of n keys (c(1) = 0, c(2) = 1).

The reference's score quantiles (`Detector.quantiles`, the default rule's cutoff among them) are
out-of-bag: each reference row scored by the trees that did not sample it, as a new inference would
be. A reference of at most SAMPLE_SIZE rows is in every tree's sample, so its quantiles are
in-sample. The cutoff is the 99th percentile (CUTOFF_QUANTILE), not a higher one: the forest splits
only within the reference's range, so any row beyond it scores about as the most extreme reference
row does, and a cutoff near the maximum (the 99.9th percentile of a few hundred rows) would be above
every far outlier. How many reference scores lie above the cutoff (`above_cutoff`, of
`scored_rows`) is kept with it: the default rule's test (metrics.functions.RateTest) reads the
share of new rows to expect above it, and its uncertainty, from those two counts.

An input constant in the reference (one number, one category, or null in every row) is never split
on, so the forest cannot tell a row that differs in it: such a row scores 1.0, as anomalous as a
score can be (`Encoding.constant`). A reference without any input that varies still gives a
detector by that rule alone: every other row scores 0.5.

Inputs are the model's PIPELINE_INPUT attributes, encoded as numbers:
- numeric (INTEGER, FLOAT, TIMESTAMP as epoch microseconds) as their value (as float64, so an
  integer past 2^53 is rounded, never refused); null and non-finite
  values as one value below the reference's range (min - span - 1), so they are a value of their
  own: rare in the reference, they are isolated fast; common, they are ordinary;
- categorical (STRING, BOOLEAN, or `categorical`) as the category's share of the reference's rows,
  null counting as a category of its own: a rare category is near 0 and isolated fast, a category
  the reference never had (or one past the MAX_CATEGORIES most frequent) is 0.
A value that cannot be read as its input's kind (a column of another type) counts as a null: scoring
never fails, so it can never stop an ingest.

The trees are flat arrays (feature, threshold, path length) in complete binary tree layout (node i
has children 2i + 1 and 2i + 2), so scoring is a loop over the depth levels with numpy indexing over
all trees and rows at once, never a loop over rows. Fitting is seeded (SEED by default): the same
reference rows in the same order give a byte-identical detector (`Detector.to_bytes`).
"""

from __future__ import annotations

import base64
import functools
import json
import math
import zlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.schema import Attribute, Model, Stage, ValueType

SEED = 0
TREES = 100
SAMPLE_SIZE = 256
MIN_REFERENCE_ROWS = 20  # fewer rows make no forest worth scoring against
MAX_CATEGORIES = 1000
QUANTILE_ROWS = 20_000  # reference rows (a seeded sample) the score quantiles are read from
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999, 1.0)
# The quantile of reference scores above which an inference is "highly anomalous" (the default rule).
CUTOFF_QUANTILE = 0.99
SCORE_ROWS = 16_384  # rows scored at once (trees x rows indices in memory)
FORMAT = 2  # 2: cutoff at the 99th percentile with the reference scores above it; constant inputs
UNLIKE_CONSTANT = 1.0  # the score of a row whose value differs from an input constant in the reference
SCORE_COLUMN = "anomaly_score"
LEDGER_STATE = "ANOMALY_DETECTOR"  # the ledger item noting a model's stored detector and its cutoff
EULER = 0.5772156649015329


def average_path_length(n: np.ndarray | int) -> np.ndarray:
    """c(n): the mean path length of an unsuccessful search among n keys (0 for n <= 1, 1 for 2)."""
    n = np.asarray(n, dtype=np.float64)
    safe = np.maximum(n, 2.0)
    found = 2.0 * (np.log(safe - 1.0) + EULER) - 2.0 * (safe - 1.0) / safe
    return np.where(n <= 1, 0.0, np.where(n == 2, 1.0, found))


@dataclass(frozen=True)
class Encoding:
    """How one input becomes a number: `numeric` (nulls as `null_value`), or `frequency` (a category's
    share of the reference's rows; `null_value` is the nulls' share, unseen categories 0).
    `constant` is the encoded value every reference row has, for an input constant in the reference
    (None when it varies)."""

    name: str
    kind: str  # numeric | frequency
    null_value: float
    categories: tuple[str, ...] = ()
    frequencies: tuple[float, ...] = ()
    constant: float | None = None

    def encode(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """The column as float64, vectorized."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if pa.types.is_null(values.type):
            return np.full(len(values), self.null_value)
        if self.kind == "frequency":
            keys = _cast(values, pa.string())
            index = pc.index_in(keys, value_set=pa.array(self.categories, pa.string()))
            shares = np.append(np.asarray(self.frequencies, dtype=np.float64), 0.0)
            found = pc.fill_null(index, len(self.categories)).to_numpy(zero_copy_only=False)
            encoded = shares[found]
            encoded[~pc.is_valid(values).to_numpy(zero_copy_only=False)] = self.null_value
            return encoded
        numbers = _numbers(values)
        numbers[~np.isfinite(numbers)] = self.null_value
        return numbers

    def unlike_constant(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """For an input constant in the reference: whether each row holds another value (a null where
        the reference had a value, a value where it had only nulls); all False otherwise."""
        if self.constant is None:
            return np.zeros(len(values), dtype=bool)
        if self.kind == "frequency":  # the one category (or null) has share 1; anything else less
            return self.encode(values) != self.constant
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        numbers = _numbers(values)
        present = np.isfinite(numbers)
        if self.constant == self.null_value:  # every reference value was null
            return present
        return ~present | (numbers != self.constant)

    def as_dict(self) -> dict[str, Any]:
        """The encoding as stored."""
        found: dict[str, Any] = {"name": self.name, "kind": self.kind, "null_value": self.null_value}
        if self.kind == "frequency":
            found |= {"categories": list(self.categories), "frequencies": list(self.frequencies)}
        if self.constant is not None:
            found["constant"] = self.constant
        return found


def _cast(values: pa.Array, to: pa.DataType) -> pa.Array:
    """The values cast lossily (an int64 past 2^53 rounds to the nearest float64); nulls when they
    cannot be read as `to` at all (a column of another type), so scoring never raises."""
    try:
        return pc.cast(values, to, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pa.nulls(len(values), to)


def _numbers(values: pa.Array) -> np.ndarray:
    """Numeric values as float64 with NaN for null (timestamps as epoch microseconds)."""
    if pa.types.is_null(values.type):
        return np.full(len(values), np.nan)
    if pa.types.is_timestamp(values.type):
        values = _cast(values, pa.timestamp("us", tz=values.type.tz)).view(pa.int64())
    return _cast(values, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64, copy=True)


def is_categorical(attribute: Attribute) -> bool:
    """Whether an input is encoded by its categories' frequencies rather than as a number."""
    return attribute.categorical or attribute.value_type in (ValueType.STRING, ValueType.BOOLEAN)


def inputs_of(model: Model) -> list[Attribute]:
    """The attributes a model's detector reads: its PIPELINE_INPUT attributes."""
    return model.by_stage(Stage.PIPELINE_INPUT)


def _column(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(table.num_rows)
    return table.column(name).combine_chunks()


def learn_encoding(attribute: Attribute, values: pa.Array) -> Encoding:
    """An input's encoding, learned from its reference values."""
    rows = len(values)
    if is_categorical(attribute):
        present = values.drop_null()
        keys = _cast(present, pa.string()).drop_null() if len(present) else pa.array([], pa.string())
        counts = pc.value_counts(keys)
        names = counts.field("values").to_pylist()
        tallies = counts.field("counts").to_numpy(zero_copy_only=False)
        order = sorted(range(len(names)), key=lambda i: (-int(tallies[i]), names[i]))[:MAX_CATEGORIES]
        return Encoding(
            attribute.name,
            "frequency",
            null_value=float((rows - len(present)) / rows) if rows else 0.0,
            categories=tuple(names[i] for i in order),
            frequencies=tuple(float(tallies[i] / rows) for i in order),
        )
    numbers = _numbers(values)
    finite = numbers[np.isfinite(numbers)]
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 0.0)
    return Encoding(attribute.name, "numeric", null_value=low - (high - low) - 1.0)


@dataclass(frozen=True)
class Detector:
    """A fitted isolation forest with its inputs' encodings and its reference's score quantiles.

    `feature`, `threshold`, `path` are (trees, nodes) arrays in complete binary tree layout:
    `feature` is the input a node splits on (-1 at a leaf), `path` a leaf's depth + c(its rows).
    `above_cutoff` of the `scored_rows` reference scores the quantiles were read from are above the
    cutoff.
    """

    encodings: tuple[Encoding, ...]
    feature: np.ndarray
    threshold: np.ndarray
    path: np.ndarray
    sample_size: int
    reference_rows: int
    seed: int
    quantiles: dict[str, float]
    above_cutoff: int = 0
    scored_rows: int = 0
    version: int = FORMAT

    @property
    def depth(self) -> int:
        """The trees' height limit."""
        return int(math.log2(self.feature.shape[1] + 1)) - 1

    @property
    def cutoff(self) -> float:
        """The reference's CUTOFF_QUANTILE score (out-of-bag): above it an inference is highly anomalous."""
        return self.quantiles[str(CUTOFF_QUANTILE)]

    def matrix(self, table: pa.Table) -> np.ndarray:
        """The table's inputs, encoded: (rows, inputs) float64."""
        if not self.encodings:
            return np.zeros((table.num_rows, 0))
        return np.column_stack([e.encode(_column(table, e.name)) for e in self.encodings])

    @functools.cached_property
    def _routes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The trees made complete for scoring: below a leaf every node sends rows left (threshold
        +inf) and carries the leaf's path length, so every row descends `depth` levels and reads its
        path length at the bottom, with no test for leaves on the way."""
        feature, threshold, path = self.feature.copy(), self.threshold.copy(), self.path.copy()
        for level in range(self.depth):
            nodes = np.arange(2**level - 1, 2 ** (level + 1) - 1)
            leaf = feature[:, nodes] < 0
            left = 2 * nodes + 1
            threshold[:, nodes] = np.where(leaf, np.inf, threshold[:, nodes])
            path[:, left] = np.where(leaf, path[:, nodes], path[:, left])
            feature[:, left] = np.where(leaf, -1, feature[:, left])
        return np.maximum(feature, 0), threshold, path

    def path_lengths(self, encoded: np.ndarray) -> np.ndarray:
        """Each row's path length in each tree: (trees, rows); a loop over trees and levels, each
        step over all rows at once."""
        feature, threshold, path = self._routes
        rows = encoded.shape[0]
        by_input = np.ascontiguousarray(encoded.T).ravel()  # input j of row i at j * rows + i
        starts = feature * rows
        lengths = np.empty((feature.shape[0], rows))
        columns = np.arange(rows)
        for tree in range(feature.shape[0]):
            start, cut = starts[tree], threshold[tree]
            node = np.zeros(rows, dtype=np.int64)
            for _ in range(self.depth):
                node = 2 * node + 1 + (by_input[start[node] + columns] > cut[node])
            lengths[tree] = path[tree, node]
        return lengths

    def score_matrix(self, encoded: np.ndarray) -> np.ndarray:
        """Scores of encoded rows, SCORE_ROWS at a time."""
        scores = np.empty(encoded.shape[0])
        normal = float(average_path_length(self.sample_size))
        for start in range(0, encoded.shape[0], SCORE_ROWS):
            part = encoded[start : start + SCORE_ROWS]
            scores[start : start + len(part)] = 2.0 ** (-self.path_lengths(part).mean(axis=0) / normal)
        return scores

    def score(self, table: pa.Table) -> pa.Array:
        """Each row's anomaly score in (0, 1] (higher: more anomalous), as float64: the forest's, or
        UNLIKE_CONSTANT for a row that differs in an input constant in the reference."""
        scores = self.score_matrix(self.matrix(table))
        for encoding in self.encodings:
            if encoding.constant is not None:
                scores[encoding.unlike_constant(_column(table, encoding.name))] = UNLIKE_CONSTANT
        return pa.array(scores, pa.float64())

    def to_bytes(self) -> bytes:
        """The detector as JSON (arrays as base64 of zlib-compressed little-endian bytes); the same
        detector gives the same bytes."""
        document = {
            "format": FORMAT,
            "algorithm": "isolation_forest",
            "trees": int(self.feature.shape[0]),
            "sample_size": self.sample_size,
            "reference_rows": self.reference_rows,
            "seed": self.seed,
            "quantiles": self.quantiles,
            "above_cutoff": self.above_cutoff,
            "scored_rows": self.scored_rows,
            "encodings": [e.as_dict() for e in self.encodings],
            "feature": _pack(self.feature.astype("<i2")),
            "threshold": _pack(self.threshold.astype("<f8")),
            "path": _pack(self.path.astype("<f8")),
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> Detector:
        """A detector as `to_bytes` wrote it (an earlier format: its counts above the cutoff as
        `rows_above` reckons them; `version` tells it is to be refitted)."""
        document = json.loads(body)
        trees = document["trees"]
        encodings = tuple(
            Encoding(
                e["name"],
                e["kind"],
                e["null_value"],
                tuple(e.get("categories", ())),
                tuple(e.get("frequencies", ())),
                e.get("constant"),
            )
            for e in document["encodings"]
        )
        scored = document.get("scored_rows") or min(document["reference_rows"], QUANTILE_ROWS)
        return cls(
            encodings=encodings,
            feature=_unpack(document["feature"], "<i2").reshape(trees, -1).astype(np.int64),
            threshold=_unpack(document["threshold"], "<f8").reshape(trees, -1),
            path=_unpack(document["path"], "<f8").reshape(trees, -1),
            sample_size=document["sample_size"],
            reference_rows=document["reference_rows"],
            seed=document["seed"],
            quantiles=document["quantiles"],
            above_cutoff=document.get("above_cutoff", rows_above(scored, CUTOFF_QUANTILE)),
            scored_rows=scored,
            version=document["format"],
        )


def rows_above(rows: int, quantile: float) -> int:
    """How many of `rows` distinct scores lie above their `quantile` (numpy's linear interpolation:
    the quantile sits at sorted position quantile * (rows - 1))."""
    return rows - 1 - math.floor(quantile * (rows - 1))


def _pack(values: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(values.tobytes(), 9)).decode()


def _unpack(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=dtype).copy()


def sample_size_for(rows: int) -> int:
    """The rows each tree is grown on: SAMPLE_SIZE, or all of a smaller reference (as scikit-learn)."""
    return min(SAMPLE_SIZE, rows)


def fit(reference: pa.Table, model: Model, seed: int = SEED, trees: int = TREES) -> Detector | None:
    """An isolation forest on the model's inputs in the reference rows; None when the model has no
    inputs or the reference fewer than MIN_REFERENCE_ROWS rows."""
    inputs = inputs_of(model)
    rows = reference.num_rows
    if not inputs or rows < MIN_REFERENCE_ROWS:
        return None
    encodings = tuple(learn_encoding(a, _column(reference, a.name)) for a in inputs)
    encoded = np.column_stack([e.encode(_column(reference, e.name)) for e in encodings])
    return fit_matrix(encoded, encodings, seed=seed, trees=trees)


def fit_matrix(
    encoded: np.ndarray, encodings: tuple[Encoding, ...], seed: int = SEED, trees: int = TREES
) -> Detector:
    """The forest on already encoded rows (rows, inputs), with their reference score quantiles."""
    rng = np.random.default_rng(seed)
    rows = encoded.shape[0]
    size = sample_size_for(rows)
    depth = math.ceil(math.log2(size))
    nodes = 2 ** (depth + 1) - 1
    samples = np.stack([rng.choice(rows, size, replace=False) for _ in range(trees)])
    feature = np.full((trees, nodes), -1, dtype=np.int64)
    threshold = np.zeros((trees, nodes))
    path = np.zeros((trees, nodes))
    _grow(encoded[samples.ravel()], np.repeat(np.arange(trees), size), depth, rng, feature, threshold, path)
    low, high = encoded.min(axis=0), encoded.max(axis=0)
    encodings = tuple(
        replace(e, constant=float(low[i]) if low[i] == high[i] else None) for i, e in enumerate(encodings)
    )
    detector = Detector(encodings, feature, threshold, path, size, rows, seed, {})
    scores = _reference_scores(detector, encoded, samples, rng)
    quantiles = {str(q): float(np.quantile(scores, q)) for q in QUANTILES}
    above = int((scores > quantiles[str(CUTOFF_QUANTILE)]).sum())
    return Detector(encodings, feature, threshold, path, size, rows, seed, quantiles, above, len(scores))


def _grow(
    values: np.ndarray,
    tree: np.ndarray,
    depth: int,
    rng: np.random.Generator,
    feature: np.ndarray,
    threshold: np.ndarray,
    path: np.ndarray,
) -> None:
    """Grow every tree a level at a time: `values` are the sampled rows, `tree` the tree of each.

    At each level the nodes holding rows are grouped (one sort), their per-input min and max read
    with reduceat, and each node split on a random non-constant input, or made a leaf (one row,
    all inputs constant, or the height limit)."""
    nodes = feature.shape[1]
    position = np.zeros(len(values), dtype=np.int64)
    for level in range(depth + 1):
        key = tree * nodes + position
        order = np.argsort(key, kind="stable")
        values, tree, position, key = values[order], tree[order], position[order], key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        counts = np.diff(np.r_[starts, len(key)])
        group_tree, group_position = tree[starts], position[starts]
        low = np.minimum.reduceat(values, starts, axis=0)
        high = np.maximum.reduceat(values, starts, axis=0)
        varies = high > low
        splits = (counts > 1) & varies.any(axis=1) & (level < depth)
        draws = rng.random((len(starts), 2))
        choices = np.floor(draws[:, 0] * varies.sum(axis=1)).astype(np.int64)
        chosen = np.argmax(np.cumsum(varies, axis=1) > choices[:, None], axis=1)
        picked = np.arange(len(starts))
        low_at, high_at = low[picked, chosen], high[picked, chosen]
        cut = low_at + draws[:, 1] * (high_at - low_at)
        cut = np.where(cut >= high_at, low_at, cut)
        leaves = ~splits
        path[group_tree[leaves], group_position[leaves]] = level + average_path_length(counts[leaves])
        feature[group_tree[splits], group_position[splits]] = chosen[splits]
        threshold[group_tree[splits], group_position[splits]] = cut[splits]
        group = np.repeat(np.arange(len(starts)), counts)
        keep = splits[group]
        if not keep.any():
            return
        group = group[keep]
        values, tree, position = values[keep], tree[keep], position[keep]
        right = values[np.arange(len(values)), chosen[group]] > cut[group]
        position = 2 * position + 1 + right


def _reference_scores(
    detector: Detector, encoded: np.ndarray, samples: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Out-of-bag reference scores (each row by the trees that did not sample it; by all trees when
    every tree did) of a seeded sample of at most QUANTILE_ROWS rows."""
    rows = encoded.shape[0]
    chosen = (
        np.sort(rng.choice(rows, QUANTILE_ROWS, replace=False)) if rows > QUANTILE_ROWS else np.arange(rows)
    )
    place = np.full(rows, -1, dtype=np.int64)
    place[chosen] = np.arange(len(chosen))
    trees, size = samples.shape
    hits = place[samples.ravel()]
    seen = np.zeros((trees, len(chosen)), dtype=bool)
    seen[np.repeat(np.arange(trees), size)[hits >= 0], hits[hits >= 0]] = True
    normal = float(average_path_length(detector.sample_size))
    scores = np.empty(len(chosen))
    for start in range(0, len(chosen), SCORE_ROWS):
        part = slice(start, start + SCORE_ROWS)
        lengths = detector.path_lengths(encoded[chosen[part]])
        unseen = ~seen[:, part]
        outside = unseen.sum(axis=0)
        mean = np.where(
            outside > 0,
            (lengths * unseen).sum(axis=0) / np.maximum(outside, 1),
            lengths.mean(axis=0),
        )
        scores[part] = 2.0 ** (-mean / normal)
    return scores


def with_scores(inferences: pa.Table, scores: pa.Array | None) -> pa.Table:
    """The inferences with their `anomaly_score` column set (nulls when `scores` is None)."""
    values = scores if scores is not None else pa.nulls(inferences.num_rows, pa.float64())
    if SCORE_COLUMN in inferences.column_names:
        return inferences.set_column(inferences.column_names.index(SCORE_COLUMN), SCORE_COLUMN, values)
    return inferences.append_column(SCORE_COLUMN, values)
