"""Is the challenger better? Two variants' performance on their labelled rows, compared.

For each performance metric of the model (classifiers: accuracy, and for binary models precision,
recall and F1; regression: RMSE and MAE) the comparison gives both values, their difference
(challenger minus champion) with a 95% bootstrap interval, and a test:

- Unpaired (different requests reached each variant, as in an A/B split): each variant's rows are
  resampled on their own (percentile Poisson bootstrap, RESAMPLES resamples, seeded). Accuracy is tested with the
  two-proportion z-test (pooled), MAE with Welch's z on the absolute errors (normal approximation).
- Paired (the same requests reached both, as in a SageMaker shadow test, matched by
  partner_inference_id): pairs are resampled together. Accuracy is tested with McNemar's exact test
  on the discordant pairs (b: only the champion right, c: only the challenger right; p = the two-sided
  binomial probability of min(b, c) in b + c trials at 1/2), MAE with a z-test on the paired
  differences of absolute errors.

Every metric is a ratio of sums of per-row quantities (accuracy = sum(correct) / sum(1), precision =
sum(tp) / sum(tp + fp), RMSE = sqrt(sum(squared error) / sum(1)), ...), so a resample is a vector of
row counts (Poisson(1) per row) and its value two dot products: no Python loop per row or per resample.

The verdict says "not enough labelled data" below MIN_LABELLED labelled rows per variant (or
MIN_DISCORDANT discordant pairs for a paired accuracy test); otherwise which variant the interval of
the primary metric (accuracy, or RMSE for regression) favours, or that it shows no difference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from sagewatch.metrics.functions import FUNCTIONS
from sagewatch.schema import Model, OutputType, Stage

MIN_LABELLED = 30
MIN_DISCORDANT = 10
RESAMPLES = 1000
BOOTSTRAP_ROWS = 20_000  # rows of a side resampled, at most (a random subsample past that)
CHUNK = 100  # resamples drawn at a time: memory CHUNK x BOOTSTRAP_ROWS counts
LEVEL = 0.95


@dataclass(frozen=True)
class Ratio:
    """A metric as sum(numerator) / sum(denominator) over rows, then `finish` (sqrt for RMSE)."""

    name: str
    numerator: np.ndarray
    denominator: np.ndarray
    higher_is_better: bool
    finish: Callable[[np.ndarray], np.ndarray] = np.asarray

    def value(self, counts: np.ndarray | None = None) -> np.ndarray:
        """The metric over the rows weighted by `counts` (one row of counts per resample), or all rows."""
        if counts is None:
            counts = np.ones((1, len(self.numerator)))
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.finish(counts @ self.numerator / (counts @ self.denominator))


@dataclass
class MetricComparison:
    """One metric of both variants: values, difference (challenger - champion), interval and test."""

    metric: str
    champion: float | None
    challenger: float | None
    difference: float | None
    interval: list[float | None]
    higher_is_better: bool
    test: str | None = None
    p_value: float | None = None


@dataclass
class Comparison:
    """The answer to "is the challenger better?"."""

    champion: str
    challenger: str
    paired: bool
    champion_labelled: int
    challenger_labelled: int
    pairs: int
    metrics: list[MetricComparison] = field(default_factory=list)
    verdict: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with NaN as null."""
        return _clean(asdict(self))


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def ratios(model: Model, table: pa.Table) -> list[Ratio]:
    """The model's performance metrics as per-row ratios over its labelled rows (others weigh 0),
    using the same per-row counting as the query engine's functions."""
    types = {name: attribute.value_type for name, attribute in ((a.name, a) for a in model.attributes)}
    if model.output_type is OutputType.REGRESSION:
        states = FUNCTIONS["rmse"]("rmse", model, {}, types, "compare").contributions(table).states
        n = _column(states["n"][0])
        return [
            Ratio("rmse", _column(states["se"][0]), n, higher_is_better=False, finish=np.sqrt),
            Ratio("mae", _column(states["ae"][0]), n, higher_is_better=False),
        ]
    if len(model.by_stage(Stage.PREDICTED_VALUE)) > 2:
        name = "accuracyRateMulticlass"
        contributions = FUNCTIONS[name](name, model, {}, types, "compare").contributions(table)
        cell = contributions.extra_keys["__cell"].to_numpy(zero_copy_only=False)
        classes = len(model.by_stage(Stage.PREDICTED_VALUE))
        labelled = ~np.isnan(cell.astype(float))
        cells = np.nan_to_num(cell.astype(float), nan=-1).astype(np.int64)
        correct = labelled & (cells // classes == cells % classes)
        return [Ratio("accuracy", correct.astype(float), labelled.astype(float), higher_is_better=True)]
    states = (
        FUNCTIONS["accuracyRate"]("accuracyRate", model, {}, types, "compare").contributions(table).states
    )
    tp, fp, tn, fn = (_column(states[k][0]) for k in ("tp", "fp", "tn", "fn"))
    labelled = tp + fp + tn + fn
    return [
        Ratio("accuracy", tp + tn, labelled, higher_is_better=True),
        Ratio("precision", tp, tp + fp, higher_is_better=True),
        Ratio("recall", tp, tp + fn, higher_is_better=True),
        Ratio("f1", 2 * tp, 2 * tp + fp + fn, higher_is_better=True),
    ]


def _column(values: pa.Array) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=float)


def compare(
    model: Model,
    champion_rows: pa.Table,
    challenger_rows: pa.Table,
    champion: str,
    challenger: str,
    seed: int = 0,
) -> Comparison:
    """Compare two variants on their rows (with ground truth joined): paired when some requests
    reached both (matched by partner_inference_id), unpaired otherwise."""
    a_ids = champion_rows.column("partner_inference_id").to_numpy(zero_copy_only=False)
    b_ids = challenger_rows.column("partner_inference_id").to_numpy(zero_copy_only=False)
    shared, a_at, b_at = np.intersect1d(a_ids, b_ids, assume_unique=True, return_indices=True)
    paired = len(shared) > 0
    a_metrics, b_metrics = ratios(model, champion_rows), ratios(model, challenger_rows)
    if paired:  # only the pairs count: the same requests, seen by both variants
        a_metrics = [_take(m, a_at) for m in a_metrics]
        b_metrics = [_take(m, b_at) for m in b_metrics]
    a_labelled = int(np.sum(a_metrics[0].denominator > 0))
    b_labelled = int(np.sum(b_metrics[0].denominator > 0))
    result = Comparison(champion, challenger, paired, a_labelled, b_labelled, len(shared))
    differences = _bootstrap(a_metrics, b_metrics, paired, np.random.default_rng(seed))
    for a, b, resampled in zip(a_metrics, b_metrics, differences, strict=True):
        result.metrics.append(_compare_metric(a, b, paired, resampled))
    _verdict(result, a_metrics, b_metrics)
    return result


def _take(ratio: Ratio, rows: np.ndarray) -> Ratio:
    return Ratio(
        ratio.name, ratio.numerator[rows], ratio.denominator[rows], ratio.higher_is_better, ratio.finish
    )


def _compare_metric(a: Ratio, b: Ratio, paired: bool, differences: np.ndarray) -> MetricComparison:
    value_a = float(a.value()[0]) if len(a.numerator) else math.nan
    value_b = float(b.value()[0]) if len(b.numerator) else math.nan
    differences = differences[np.isfinite(differences)]
    tail = (1 - LEVEL) / 2 * 100
    interval = (
        [float(x) for x in np.percentile(differences, [tail, 100 - tail])]
        if len(differences)
        else [None, None]
    )
    comparison = MetricComparison(a.name, value_a, value_b, value_b - value_a, interval, a.higher_is_better)
    if a.name == "accuracy":
        comparison.test, comparison.p_value = _accuracy_test(a, b, paired)
    elif a.name == "mae":
        comparison.test, comparison.p_value = _error_test(a, b, paired)
    return comparison


def _bootstrap(
    a_metrics: list[Ratio], b_metrics: list[Ratio], paired: bool, rng: np.random.Generator
) -> list[np.ndarray]:
    """Per metric, RESAMPLES differences b - a over resampled rows (pairs resampled together when
    paired); none when a side has no rows.

    Poisson bootstrap: a row's count in a resample is Poisson(1), the multinomial's large-sample form,
    and one draw of counts serves every metric. Past BOOTSTRAP_ROWS rows a side is resampled from a
    random subsample of that many rows, and each resampled value's deviation from the subsample's is
    shrunk by sqrt(subsample / rows) around the full side's value (the m-out-of-n bootstrap of a
    smooth statistic, whose spread falls as 1/sqrt(rows)): the cost stays bounded whatever the window.
    """
    sides = [a_metrics, b_metrics]
    rows = [len(metrics[0].numerator) for metrics in sides]
    if min(rows) == 0:
        return [np.array([]) for _ in a_metrics]
    kept: list[np.ndarray | None] = [None, None]
    for side in (0, 1):
        if rows[side] > BOOTSTRAP_ROWS:
            kept[side] = np.sort(rng.choice(rows[side], BOOTSTRAP_ROWS, replace=False))
    if paired:  # the two sides are aligned pairs: the same rows on both
        kept[1] = kept[0]
    samples = [[m if kept[i] is None else _take(m, kept[i]) for m in sides[i]] for i in (0, 1)]
    full = [[float(m.value()[0]) for m in sides[i]] for i in (0, 1)]
    shrink = [math.sqrt(len(samples[i][0].numerator) / rows[i]) for i in (0, 1)]
    centre = [[float(m.value()[0]) for m in samples[i]] for i in (0, 1)]
    found: list[list[np.ndarray]] = [[] for _ in a_metrics]
    for start in range(0, RESAMPLES, CHUNK):
        size = min(CHUNK, RESAMPLES - start)
        counts_a = rng.poisson(1.0, (size, len(samples[0][0].numerator))).astype(float)
        counts_b = (
            counts_a if paired else rng.poisson(1.0, (size, len(samples[1][0].numerator))).astype(float)
        )
        for k, (a, b) in enumerate(zip(samples[0], samples[1], strict=True)):
            value_a = full[0][k] + (a.value(counts_a) - centre[0][k]) * shrink[0]
            value_b = full[1][k] + (b.value(counts_b) - centre[1][k]) * shrink[1]
            found[k].append(value_b - value_a)
    return [np.concatenate(parts) for parts in found]


def _accuracy_test(a: Ratio, b: Ratio, paired: bool) -> tuple[str, float | None]:
    if paired:
        both = (a.denominator > 0) & (b.denominator > 0)
        right_a, right_b = a.numerator[both] > 0, b.numerator[both] > 0
        only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
        return "McNemar's exact test", binomial_two_sided(min(only_a, only_b), only_a + only_b)
    n_a, n_b = a.denominator.sum(), b.denominator.sum()
    if n_a == 0 or n_b == 0:
        return "two-proportion z-test", None
    p_a, p_b = a.numerator.sum() / n_a, b.numerator.sum() / n_b
    pooled = (a.numerator.sum() + b.numerator.sum()) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return "two-proportion z-test", _two_sided_normal((p_b - p_a) / spread) if spread > 0 else 1.0


def _error_test(a: Ratio, b: Ratio, paired: bool) -> tuple[str, float | None]:
    """MAE: z on the mean difference of absolute errors (paired), or Welch's z (unpaired)."""
    rows_a, rows_b = a.denominator > 0, b.denominator > 0
    if paired:
        both = rows_a & rows_b
        difference = b.numerator[both] - a.numerator[both]
        if len(difference) < 2:
            return "paired z-test on absolute errors", None
        spread = difference.std(ddof=1) / math.sqrt(len(difference))
        z = difference.mean() / spread if spread > 0 else 0.0
        return "paired z-test on absolute errors", _two_sided_normal(z)
    errors_a, errors_b = a.numerator[rows_a], b.numerator[rows_b]
    if len(errors_a) < 2 or len(errors_b) < 2:
        return "Welch z-test on absolute errors", None
    spread = math.sqrt(errors_a.var(ddof=1) / len(errors_a) + errors_b.var(ddof=1) / len(errors_b))
    z = (errors_b.mean() - errors_a.mean()) / spread if spread > 0 else 0.0
    return "Welch z-test on absolute errors", _two_sided_normal(z)


def binomial_two_sided(k: int, n: int) -> float | None:
    """P(X <= k or X >= n - k) for X ~ Binomial(n, 1/2), k <= n/2: McNemar's exact p-value."""
    if n == 0:
        return None
    log_total = math.lgamma(n + 1) - n * math.log(2)
    low = sum(math.exp(log_total - math.lgamma(i + 1) - math.lgamma(n - i + 1)) for i in range(k + 1))
    return min(1.0, 2 * low)


def _two_sided_normal(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def _verdict(result: Comparison, a_metrics: list[Ratio], b_metrics: list[Ratio]) -> None:
    primary = result.metrics[0]
    if min(result.champion_labelled, result.challenger_labelled) < MIN_LABELLED:
        result.verdict = "not enough labelled data"
        result.reason = (
            f"{result.champion_labelled} labelled rows for {result.champion} and {result.challenger_labelled} "
            f"for {result.challenger}{' (pairs)' if result.paired else ''}; at least {MIN_LABELLED} each are needed"
        )
        return
    if result.paired and primary.metric == "accuracy":
        right_a = a_metrics[0].numerator > 0
        right_b = b_metrics[0].numerator > 0
        discordant = int(np.sum(right_a != right_b))
        if discordant < MIN_DISCORDANT:
            result.verdict = "not enough labelled data"
            result.reason = (
                f"the variants disagree on {discordant} of {result.pairs} labelled pairs; McNemar's test "
                f"needs at least {MIN_DISCORDANT}"
            )
            return
    low, high = primary.interval
    if low is None or high is None:
        result.verdict, result.reason = "not enough labelled data", f"{primary.metric} could not be computed"
        return
    better = high < 0 if not primary.higher_is_better else low > 0
    worse = low > 0 if not primary.higher_is_better else high < 0
    interval = (
        f"{primary.metric} difference {primary.difference:+.4g}, 95% interval [{low:+.4g}, {high:+.4g}]"
    )
    if better:
        result.verdict, result.reason = "challenger better", interval
    elif worse:
        result.verdict, result.reason = "champion better", interval
    else:
        result.verdict, result.reason = "no difference shown", f"{interval} includes 0"
