"""The query functions, registered by name, each a partial aggregate (sagewatch.metrics.aggregates).

Definitions (N = rows in the group; labelled = rows whose prediction and ground truth are known):
- count: N. sum, avg, min, max {property}: over non-null values.
- rate {property, comparator, value}: rows meeting the condition / N.
- rateTest {property, comparator, value, share, share_rows}: the one-sided p-value of at least k of
  the N rows meeting the condition when each meets it with probability `share`: P(X >= k), X
  binomial (N, share); with share_rows > 0 the share was itself seen in share x share_rows of
  share_rows rows, its uncertainty Beta(j + 1, share_rows - j + 1) with j = share x share_rows, and
  X beta-binomial. Exact (`upper_tail`); null for a group without rows.
- nullRate {property}: null values / N. outOfRangeRate {property}: non-null values outside the
  attribute's [min_range, max_range] / non-null values. newCategoryRate {property}: non-null values
  not among the attribute's categories / non-null values.
- distribution {property, num_bins}: counts per category, or per equal-width bin of the attribute's
  range (values outside fall in the first or last bin).
- Binary classification (prediction = score >= threshold; positive = the positive class):
  accuracyRate (TP+TN)/n, precision TP/(TP+FP), recall = sensitivity = truePositiveRate
  TP/(TP+FN), specificity = trueNegativeRate TN/(TN+FP), falsePositiveRate FP/(FP+TN),
  falseNegativeRate FN/(FN+TP), f1 2TP/(2TP+FP+FN), balancedAccuracyRate (TPR+TNR)/2,
  confusionMatrixRate {true_positive, false_positive, true_negative, false_negative} / n.
- auc: from score histograms (1,000 equal-width bins of [0, 1]); pairs of a positive and a negative
  in the same bin count one half, so |auc - exact| <= 1/2 * (such pairs) / (positives * negatives)
  (`auc_error_bound` computes it).
- Multiclass (predicted class = the largest probability; truth from the class column or the
  one-hot columns): accuracyRateMulticlass; precisionMulticlass, recallMulticlass, f1Multiclass:
  the macro average over classes, or one class's one-vs-rest value with predicted_property.
- Regression: rmse sqrt(mean((p - y)^2)), mae mean(|p - y|), rSquared 1 - SSE/SST.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.errors import InvalidInput
from sagewatch.metrics import filters
from sagewatch.metrics.aggregates import (
    Aggregate,
    Contributions,
    as_values,
    indicator,
    numbers,
    ones,
    ratio,
    state,
)
from sagewatch.schema import GROUND_TRUTH_STAGES, Model, OutputType, Stage, ValueType, parse_class_value

FUNCTIONS: dict[str, type[Function]] = {}
AUC_BINS = 1000


def register(*names: str):
    """A class decorator entering the Function in FUNCTIONS under each of these names."""

    def decorate(cls: type[Function]) -> type[Function]:
        for name in names:
            FUNCTIONS[name] = cls
        return cls

    return decorate


class Function(Aggregate):
    """A selected function: parameters checked against the model when built.

    PARAMETERS names every parameter the function reads; any other is a 400 (a typo such as
    `treshold` would otherwise be ignored and the default silently used).
    """

    PARAMETERS: tuple[str, ...] = ()

    def __init__(
        self, name: str, model: Model, parameters: dict[str, Any], types: dict[str, ValueType], field: str
    ):
        self.name, self.model, self.parameters, self.types, self.field = name, model, parameters, types, field
        unknown = sorted(set(parameters) - set(self.PARAMETERS))
        if unknown:
            accepted = ", ".join(self.PARAMETERS) or "none"
            raise InvalidInput(
                f"{name} has no parameter {unknown[0]!r} (it takes: {accepted})",
                field=f"{field}.parameters.{unknown[0]}",
            )

    def parameter(self, key: str, default: Any = ...) -> Any:
        """A parameter's value; `default` when it is absent or null, a 400 when there is no default."""
        if key in self.parameters and self.parameters[key] is not None:
            return self.parameters[key]
        if default is ...:
            raise InvalidInput(
                f"{self.name} needs the parameter {key!r}", field=f"{self.field}.parameters.{key}"
            )
        return default

    def number(self, key: str, default: float, low: float, high: float) -> float:
        """A numeric parameter within [low, high]; 400 naming it otherwise."""
        value = self.parameter(key, default)
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if isinstance(value, bool) or not low <= number <= high:
            raise InvalidInput(
                f"{key} is a number from {low:g} to {high:g}, not {value!r}",
                field=f"{self.field}.parameters.{key}",
            )
        return number

    def property(self, key: str = "property", numeric: bool = False) -> str:
        """The column a parameter names (numeric, when asked: INTEGER, FLOAT or BOOLEAN); 400 otherwise."""
        name = self.parameter(key)
        if not isinstance(name, str) or name not in self.types:
            raise InvalidInput(f"unknown property {name!r}", field=f"{self.field}.parameters.{key}")
        if numeric and self.types[name] not in (ValueType.INTEGER, ValueType.FLOAT, ValueType.BOOLEAN):
            raise InvalidInput(
                f"{self.name} needs a numeric property; {name!r} is {self.types[name].value}",
                field=f"{self.field}.parameters.{key}",
            )
        return name


def column(table: pa.Table, name: str) -> pa.Array:
    """A column as one array; all nulls when the table lacks it."""
    values = table.column(name) if name in table.column_names else pa.nulls(table.num_rows)
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


# -- plain aggregates -------------------------------------------------------------------------------


@register("count")
class Count(Function):
    """count: the rows of the group."""

    def contributions(self, table: pa.Table) -> Contributions:
        """A 1 per row, summed."""
        return Contributions({"n": (ones(table), "sum")})

    def finalize(self, states: pa.Table, keys: list[str]) -> pa.Array:
        """The rows counted, as integers."""
        return pa.array(state(states, "n").astype(np.int64))


@register("sum", "avg", "min", "max")
class Summary(Function):
    """sum, avg, min and max of a numeric property, over its non-null values."""

    PARAMETERS = ("property",)

    def contributions(self, table: pa.Table) -> Contributions:
        """min, max: the values; sum, avg: the values (null as 0) and whether each is present."""
        values = numbers(table, self.property(numeric=True))
        if self.name in ("min", "max"):
            return Contributions({"v": (values, self.name)})
        return Contributions(
            {"v": (pc.fill_null(values, 0.0), "sum"), "n": (indicator(pc.is_valid(values)), "sum")}
        )

    def finalize(self, states: pa.Table, keys: list[str]) -> pa.Array:
        """min or max as merged; sum (null over no values) or avg (the total over the values present)."""
        if self.name in ("min", "max"):
            return as_values(state(states, "v", self.name))
        total, count = state(states, "v"), state(states, "n")
        return as_values(ratio(total, count) if self.name == "avg" else np.where(count > 0, total, np.nan))


@register("rate")
class Rate(Function):
    """rate: the share of rows meeting a condition {property, comparator, value}."""

    PARAMETERS = ("property", "comparator", "value")

    def contributions(self, table: pa.Table) -> Contributions:
        """A 1 per row meeting the condition, and a 1 per row."""
        condition = filters.Condition(
            property=self.property(),
            comparator=self.parameter("comparator"),
            value=self.parameters.get("value"),
        )
        hit = filters.mask(table, condition, self.types, f"{self.field}.parameters")
        return Contributions({"hit": (indicator(hit), "sum"), "n": (ones(table), "sum")})

    def finalize(self, states: pa.Table, keys: list[str]) -> pa.Array:
        """Rows meeting the condition over rows."""
        return as_values(ratio(state(states, "hit"), state(states, "n")))


MAX_SHARE_ROWS = 1e7  # rateTest's share_rows: exact to about 1e-9 up to here (checked against mpmath)


@register("rateTest")
class RateTest(Rate):
    """rateTest: how surprising a rate is, as the p-value of at least that many rows meeting the
    condition when each row meets it with probability `share` (known exactly, or seen in `share_rows`
    rows). Small is surprising: a rule on it is bound "lower"."""

    PARAMETERS = ("property", "comparator", "value", "share", "share_rows")

    def null_share(self) -> tuple[float, float]:
        """(share, share_rows): the expected share of rows meeting the condition, and the rows it was
        seen in (0: known exactly); 400 naming the parameter when absent or out of range."""
        self.parameter("share")
        # past MAX_SHARE_ROWS the log-gamma differences lose digits, and the share is as good as exact
        return self.number("share", 0.0, 0.0, 1.0), self.number("share_rows", 0.0, 0.0, MAX_SHARE_ROWS)

    def contributions(self, table: pa.Table) -> Contributions:
        """As rate's, once the parameters are checked."""
        self.null_share()
        return super().contributions(table)

    def finalize(self, states: pa.Table, keys: list[str]) -> pa.Array:
        """The p-value of each group's rows meeting the condition, computed once per group."""
        share, share_rows = self.null_share()
        hits, rows = state(states, "hit"), state(states, "n")
        return as_values(
            np.array(
                [
                    upper_tail(int(k), int(n), share, share_rows) if n > 0 else np.nan
                    for k, n in zip(hits, rows, strict=True)
                ],
                dtype=np.float64,
            )
        )


def upper_tail(hits: int, rows: int, share: float, share_rows: float = 0.0) -> float:
    """P(X >= hits) for X the rows, of `rows`, meeting a condition each meets with probability
    `share`: binomial; beta-binomial when the share was seen in share_rows > 0 rows (the share
    Beta(a, b), a = share x share_rows + 1, b = share_rows - share x share_rows + 1).

    Exact, without scipy: the pmf terms are summed in log space from `hits` up (above the mean), or
    from hits - 1 down for 1 - P(X <= hits - 1) (at or below it), in blocks that double, until the
    rest is negligible: both laws are log-concave, so past the mode the terms fall at least
    geometrically and the rest is bounded by the last term x r / (1 - r), r the next term's ratio.
    """
    if hits <= 0:
        return 1.0
    if hits > rows:
        return 0.0
    if share_rows > 0:
        a, b = share * share_rows + 1.0, share_rows - share * share_rows + 1.0
        mean = rows * a / (a + b)

        def log_pmf(i: int) -> float:
            return _log_choose(rows, i) + _log_beta(i + a, rows - i + b) - _log_beta(a, b)

        def log_ratio(i: np.ndarray) -> np.ndarray:  # log pmf(i + 1) - log pmf(i)
            return np.log((rows - i) * (i + a)) - np.log((i + 1) * (rows - i - 1 + b))

    else:
        if share <= 0.0 or share >= 1.0:
            return 1.0 if share >= 1.0 else 0.0
        mean = rows * share
        odds = math.log(share) - math.log1p(-share)

        def log_pmf(i: int) -> float:
            return _log_choose(rows, i) + i * math.log(share) + (rows - i) * math.log1p(-share)

        def log_ratio(i: np.ndarray) -> np.ndarray:
            return np.log(rows - i) - np.log(i + 1) + odds

    if hits > mean:
        return min(1.0, _sum_terms(hits, rows, 1, log_pmf, log_ratio))
    return max(0.0, 1.0 - _sum_terms(hits - 1, rows, -1, log_pmf, log_ratio))


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _sum_terms(
    start: int,
    rows: int,
    step: int,
    log_pmf: Any,
    log_ratio: Any,
) -> float:
    """pmf(start) + pmf(start + step) + ... to 0 or `rows`, stopped once the rest is below 1e-17 of
    the sum (the terms falling: log-concavity bounds the rest by a geometric series)."""
    first = log_pmf(start)
    total, last, position, size = 1.0, 0.0, start, 1024
    while True:
        count = min(size, rows - position if step > 0 else position)
        if count <= 0:
            break
        steps = (
            np.arange(position, position + count)
            if step > 0
            else np.arange(position - 1, position - count - 1, -1)
        )
        logs = last + np.cumsum(log_ratio(steps) if step > 0 else -log_ratio(steps))
        total += float(np.exp(logs).sum())
        position, last, size = position + step * count, float(logs[-1]), size * 2
        if not 0 < position < rows:
            break
        following = float(log_ratio(np.array([position if step > 0 else position - 1]))[0]) * step
        if following < 0 and last + following - math.log(-math.expm1(following)) < math.log(total) - 40:
            break
    return math.exp(first + math.log(total))


@register("nullRate", "outOfRangeRate", "newCategoryRate")
class Integrity(Function):
    """nullRate, outOfRangeRate and newCategoryRate of a property (defined in the module docstring)."""

    PARAMETERS = ("property",)

    def contributions(self, table: pa.Table) -> Contributions:
        """The bad values and what they are a share of; 400 without a range or categories to check."""
        name = self.property()
        values = column(table, name)
        present = pc.is_valid(values)
        if self.name == "nullRate":
            return Contributions({"bad": (indicator(pc.invert(present)), "sum"), "n": (ones(table), "sum")})
        attribute = self.model.attribute(name) if name in {a.name for a in self.model.attributes} else None
        if self.name == "outOfRangeRate":
            if attribute is None or (attribute.min_range is None and attribute.max_range is None):
                raise InvalidInput(
                    f"{name!r} has no range (min_range, max_range)", field=f"{self.field}.parameters"
                )
            numeric = numbers(table, name)
            low = (
                pc.less(numeric, attribute.min_range)
                if attribute.min_range is not None
                else pa.array(np.zeros(len(values), dtype=bool))
            )
            high = (
                pc.greater(numeric, attribute.max_range)
                if attribute.max_range is not None
                else pa.array(np.zeros(len(values), dtype=bool))
            )
            bad = pc.or_(low, high)
        else:
            if attribute is None or not attribute.categories:
                raise InvalidInput(f"{name!r} has no categories", field=f"{self.field}.parameters")
            known = pa.array(
                [parse_class_value(c.value, attribute.value_type) for c in attribute.categories],
                type=values.type if not pa.types.is_null(values.type) else None,
            )
            bad = pc.invert(pc.is_in(values, value_set=known))
        return Contributions(
            {"bad": (indicator(pc.and_(present, bad)), "sum"), "n": (indicator(present), "sum")}
        )

    def finalize(self, states: pa.Table, keys: list[str]) -> pa.Array:
        """Bad values over rows (nullRate) or over non-null values (the others)."""
        return as_values(ratio(state(states, "bad"), state(states, "n")))


@register("distribution")
class Distribution(Function):
    """Counts per category or per equal-width bin; the value is a list of {lower, upper, count} or
    {value, count}."""

    PARAMETERS = ("property", "num_bins", "lower", "upper")

    def _edges(self) -> np.ndarray | None:
        """Equal-width bin edges over [lower, upper] (given, else the attribute's declared range);
        None for a categorical attribute, whose values are counted as they are."""
        name = self.property()
        attribute = next((a for a in self.model.attributes if a.name == name), None)
        if (attribute is not None and attribute.categorical) or self.types[name] not in (
            ValueType.INTEGER,
            ValueType.FLOAT,
        ):
            return None
        given = {key for key in ("lower", "upper") if self.parameters.get(key) is not None}
        if given:
            if given != {"lower", "upper"}:
                raise InvalidInput("give both lower and upper, or neither", field=f"{self.field}.parameters")
            lower, upper = self.number("lower", 0.0, -1e300, 1e300), self.number("upper", 0.0, -1e300, 1e300)
            if not lower < upper:
                raise InvalidInput("lower is below upper", field=f"{self.field}.parameters.upper")
        elif attribute is None:  # a numeric column that is no attribute: anomaly_score, in [0, 1]
            lower, upper = 0.0, 1.0
        elif attribute.min_range is None or attribute.max_range is None:
            raise InvalidInput(
                f"{name!r} has no range to bin over: declare min_range and max_range, or give lower and upper",
                field=f"{self.field}.parameters.property",
            )
        else:
            lower, upper = attribute.min_range, attribute.max_range
        bins = int(self.number("num_bins", 20, 1, 1000))
        return np.linspace(lower, upper, bins + 1)

    def contributions(self, table: pa.Table) -> Contributions:
        """A 1 per row, under its category or bin index as an extra key."""
        name = self.property()
        edges = self._edges()
        values = column(table, name)
        if edges is None:
            key = pc.cast(values, pa.string())
        else:
            raw = numbers(table, name).to_numpy(zero_copy_only=False)
            with np.errstate(invalid="ignore"):
                index = np.clip(np.searchsorted(edges, raw, side="right") - 1, 0, len(edges) - 2)
            key = pa.array(index, mask=np.isnan(raw))
        return Contributions({"n": (ones(table), "sum")}, extra_keys={"__bucket": key})

    def finalize(self, states: pa.Table, keys: list[str]) -> pa.Array:
        """Per group, the counts by category or by bin, nulls last."""
        edges = self._edges()
        results = []
        for counts, buckets in zip(
            states.column("s_n__sum").to_pylist(), states.column("__bucket").to_pylist(), strict=True
        ):
            pairs = sorted(zip(buckets, counts, strict=True), key=lambda pair: (pair[0] is None, pair[0]))
            if edges is None:
                results.append([{"value": b, "count": int(c)} for b, c in pairs])
            else:
                results.append(
                    [
                        {
                            "lower": None if b is None else float(edges[b]),
                            "upper": None if b is None else float(edges[b + 1]),
                            "count": int(c),
                        }
                        for b, c in pairs
                    ]
                )
        return pa.array(results)


# -- classification ---------------------------------------------------------------------------------


class Labelled(Function):
    """Functions of predictions against ground truth."""

    PARAMETERS = ("predicted_property", "ground_truth_property")

    needs_ground_truth = True

    def truth_attribute(self, prediction: str) -> str:
        """The ground truth of a prediction: ground_truth_property, else the map's, else the class column."""
        mapping = self.model.pred_to_ground_truth_map or {}
        if self.parameters.get("ground_truth_property"):
            name = self.parameters["ground_truth_property"]
            if not isinstance(name, str) or name not in {
                a.name for a in self.model.by_stage(*GROUND_TRUTH_STAGES)
            }:
                raise InvalidInput(
                    f"{name!r} is not a ground truth attribute",
                    field=f"{self.field}.parameters.ground_truth_property",
                )
            return name
        if self.model.ground_truth_form == "attribute":
            return str(mapping[prediction])
        return self.model.by_stage(*GROUND_TRUTH_STAGES)[0].name

    def prediction_attribute(self, default: str | None) -> str:
        """predicted_property, else `default`; 400 unless it names a PREDICTED_VALUE attribute."""
        name = self.parameters.get("predicted_property") or default
        if name is None:
            raise InvalidInput(f"{self.name} needs predicted_property", field=f"{self.field}.parameters")
        if not isinstance(name, str) or name not in {
            a.name for a in self.model.by_stage(Stage.PREDICTED_VALUE)
        }:
            raise InvalidInput(
                f"{name!r} is not a PREDICTED_VALUE attribute",
                field=f"{self.field}.parameters.predicted_property",
            )
        return name


BINARY = (
    "accuracyRate",
    "balancedAccuracyRate",
    "f1",
    "precision",
    "recall",
    "sensitivity",
    "specificity",
    "truePositiveRate",
    "trueNegativeRate",
    "falsePositiveRate",
    "falseNegativeRate",
    "confusionMatrixRate",
    "auc",
)


@register(*BINARY)
class Binary(Labelled):
    """Binary classification metrics: a score against a threshold, compared with the positive class."""

    PARAMETERS = (*Labelled.PARAMETERS, "threshold")

    def _setup(self) -> tuple[str, str, Any, float]:
        predictions = self.model.by_stage(Stage.PREDICTED_VALUE)
        if self.model.output_type is OutputType.REGRESSION or (
            len(predictions) > 2 and not self.parameters.get("predicted_property")
        ):
            raise InvalidInput(
                f"{self.name} is a binary classification metric; use the *Multiclass variant or rmse/mae/rSquared",
                field=f"{self.field}.function",
            )
        prediction = self.prediction_attribute(self.model.positive_predicted_attribute)
        truth = self.truth_attribute(prediction)
        mapping = self.model.pred_to_ground_truth_map or {}
        positive = mapping.get(prediction) if self.model.ground_truth_form == "class" else 1
        threshold = self.number("threshold", self.model.classifier_threshold or 0.5, 0.0, 1.0)
        return prediction, truth, positive, threshold

    def contributions(self, table: pa.Table) -> Contributions:
        """Per row, whether it is a TP, FP, TN or FN; for auc, positives and negatives by score bin."""
        prediction, truth, positive, threshold = self._setup()
        score = numbers(table, prediction)
        truth_values = column(table, truth)
        actual = (
            pc.equal(truth_values, pa.scalar(positive).cast(truth_values.type))
            if not pa.types.is_null(truth_values.type)
            else pa.nulls(len(truth_values), pa.bool_())
        )
        labelled = pc.and_(pc.is_valid(score), pc.is_valid(actual))
        if self.name == "auc":
            raw = score.to_numpy(zero_copy_only=False)
            with np.errstate(invalid="ignore"):
                bins = np.clip((raw * AUC_BINS).astype(np.int64, copy=False), 0, AUC_BINS - 1)
            positive_rows = pc.and_(labelled, actual)
            negative_rows = pc.and_(labelled, pc.invert(actual))
            return Contributions(
                {"pos": (indicator(positive_rows), "sum"), "neg": (indicator(negative_rows), "sum")},
                extra_keys={"__score_bin": pa.array(np.where(np.isnan(raw), 0, bins))},
            )
        predicted = pc.greater_equal(score, threshold)
        tp = pc.and_(labelled, pc.and_(predicted, actual))
        fp = pc.and_(labelled, pc.and_(predicted, pc.invert(actual)))
        tn = pc.and_(labelled, pc.and_(pc.invert(predicted), pc.invert(actual)))
        fn = pc.and_(labelled, pc.and_(pc.invert(predicted), actual))
        return Contributions(
            {k: (indicator(v), "sum") for k, v in {"tp": tp, "fp": fp, "tn": tn, "fn": fn}.items()}
        )

    def finalize(self, states: pa.Table, keys: list[str]) -> pa.Array:
        """The named rate from the merged counts (confusionMatrixRate: four shares; auc: from the bins)."""
        if self.name == "auc":
            return as_values(auc_by_group(states, keys)[0])
        tp, fp, tn, fn = (state(states, k) for k in ("tp", "fp", "tn", "fn"))
        n = tp + fp + tn + fn
        tpr, tnr = ratio(tp, tp + fn), ratio(tn, tn + fp)
        values = {
            "accuracyRate": ratio(tp + tn, n),
            "balancedAccuracyRate": (tpr + tnr) / 2,
            "f1": ratio(2 * tp, 2 * tp + fp + fn),
            "precision": ratio(tp, tp + fp),
            "recall": tpr,
            "sensitivity": tpr,
            "truePositiveRate": tpr,
            "specificity": tnr,
            "trueNegativeRate": tnr,
            "falsePositiveRate": ratio(fp, fp + tn),
            "falseNegativeRate": ratio(fn, fn + tp),
        }
        if self.name == "confusionMatrixRate":
            return pa.array(
                [
                    None
                    if total == 0
                    else {
                        "true_positive": a / total,
                        "false_positive": b / total,
                        "true_negative": c / total,
                        "false_negative": d / total,
                    }
                    for a, b, c, d, total in zip(tp, fp, tn, fn, n, strict=True)
                ]
            )
        return as_values(values[self.name])


def auc_by_group(states: pa.Table, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """AUC and its error bound per row of `states` (rows are groups; bins arrive as lists)."""
    positives = states.column("s_pos__sum").to_pylist()
    negatives = states.column("s_neg__sum").to_pylist()
    bins = states.column("__score_bin").to_pylist()
    values, bounds = [], []
    for pos, neg, where in zip(positives, negatives, bins, strict=True):
        p = np.zeros(AUC_BINS)
        q = np.zeros(AUC_BINS)
        np.add.at(p, np.asarray(where, dtype=np.int64), pos)
        np.add.at(q, np.asarray(where, dtype=np.int64), neg)
        total_p, total_q = p.sum(), q.sum()
        if total_p == 0 or total_q == 0:
            values.append(math.nan)
            bounds.append(math.nan)
            continue
        negatives_below = np.cumsum(q) - q
        wins = float((p * negatives_below).sum() + 0.5 * (p * q).sum())
        values.append(wins / (total_p * total_q))
        bounds.append(0.5 * float((p * q).sum()) / (total_p * total_q))
    return np.array(values), np.array(bounds)


MULTICLASS = ("accuracyRateMulticlass", "precisionMulticlass", "recallMulticlass", "f1Multiclass")


@register(*MULTICLASS)
class Multiclass(Labelled):
    """Multiclass metrics: the class of the largest probability against the true class."""

    def _classes(self) -> list[str]:
        predictions = [a.name for a in self.model.by_stage(Stage.PREDICTED_VALUE)]
        if self.model.output_type is OutputType.REGRESSION or len(predictions) < 2:
            raise InvalidInput(
                f"{self.name} needs a classifier with a probability per class", field=f"{self.field}.function"
            )
        return predictions

    def contributions(self, table: pa.Table) -> Contributions:
        """A 1 per row with every score and a label, keyed by its confusion matrix cell (true, predicted)."""
        classes = self._classes()
        scores = np.column_stack([numbers(table, c).to_numpy(zero_copy_only=False) for c in classes])
        known = ~np.isnan(scores).any(axis=1)
        predicted = np.argmax(np.where(np.isnan(scores), -np.inf, scores), axis=1)
        mapping = self.model.pred_to_ground_truth_map or {}
        if self.model.ground_truth_form == "class":
            truth = column(table, self.truth_attribute(classes[0]))
            values = pa.array(
                [mapping[c] for c in classes], type=truth.type if not pa.types.is_null(truth.type) else None
            )
            actual = pc.index_in(truth, value_set=values).to_numpy(zero_copy_only=False)
            labelled = ~np.isnan(actual.astype(float))
            actual = np.nan_to_num(actual.astype(float)).astype(np.int64)
        else:
            hot = np.column_stack(
                [numbers(table, str(mapping[c])).to_numpy(zero_copy_only=False) for c in classes]
            )
            labelled = ~np.isnan(hot).any(axis=1)
            actual = np.argmax(np.nan_to_num(hot, nan=-1), axis=1)
        cell = np.where(known & labelled, actual * len(classes) + predicted, -1)
        return Contributions(
            {"n": (indicator(cell >= 0), "sum")}, extra_keys={"__cell": pa.array(cell, mask=cell < 0)}
        )

    def finalize(self, states: pa.Table, keys: list[str]) -> pa.Array:
        """Accuracy; or precision, recall or F1, macro-averaged (one class's with predicted_property)."""
        classes = self._classes()
        k = len(classes)
        only = self.parameters.get("predicted_property")
        if only is not None:
            self.prediction_attribute(None)
        results = []
        for counts, cells in zip(
            states.column("s_n__sum").to_pylist(), states.column("__cell").to_pylist(), strict=True
        ):
            matrix = np.zeros((k, k))
            for count, cell in zip(counts, cells, strict=True):
                if cell is not None:
                    matrix[cell // k, cell % k] += count
            total = matrix.sum()
            if total == 0:
                results.append(math.nan)
                continue
            tp = np.diag(matrix)
            precision = ratio(tp, matrix.sum(axis=0))
            recall = ratio(tp, matrix.sum(axis=1))
            f1 = ratio(2 * tp, matrix.sum(axis=0) + matrix.sum(axis=1))
            if self.name == "accuracyRateMulticlass":
                results.append(tp.sum() / total)
                continue
            per_class = {"precisionMulticlass": precision, "recallMulticlass": recall, "f1Multiclass": f1}[
                self.name
            ]
            if only is not None:
                results.append(float(per_class[classes.index(only)]))
            else:  # macro: classes never seen (no truth and no prediction) are left out
                present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
                results.append(
                    float(np.nanmean(np.where(np.isnan(per_class[present]), 0.0, per_class[present])))
                )
        return as_values(np.array(results, dtype=float))


@register("rmse", "mae", "rSquared")
class Regression(Labelled):
    """rmse, mae and rSquared of a prediction against its ground truth."""

    def contributions(self, table: pa.Table) -> Contributions:
        """Over rows with both values: their count, squared and absolute errors, sums of y and y^2."""
        explicit = self.parameters.get("predicted_property") and self.parameters.get("ground_truth_property")
        if self.model.output_type is not OutputType.REGRESSION and not explicit:
            raise InvalidInput(
                f"{self.name} is a regression metric; for another model name predicted_property and "
                "ground_truth_property",
                field=f"{self.field}.function",
            )
        predictions = self.model.by_stage(Stage.PREDICTED_VALUE)
        prediction = self.prediction_attribute(predictions[0].name if len(predictions) == 1 else None)
        truth = self.truth_attribute(prediction)
        p = numbers(table, prediction).to_numpy(zero_copy_only=False)
        y = numbers(table, truth).to_numpy(zero_copy_only=False)
        both = ~np.isnan(p) & ~np.isnan(y)
        error = np.where(both, p - y, 0.0)
        y = np.where(both, y, 0.0)
        return Contributions(
            {
                "n": (pa.array(both.astype(np.int64)), "sum"),
                "se": (pa.array(error**2), "sum"),
                "ae": (pa.array(np.abs(error)), "sum"),
                "y": (pa.array(y), "sum"),
                "yy": (pa.array(y**2), "sum"),
            }
        )

    def finalize(self, states: pa.Table, keys: list[str]) -> pa.Array:
        """rmse, mae, or rSquared (null where the ground truth does not vary)."""
        n, se, ae, y, yy = (state(states, k) for k in ("n", "se", "ae", "y", "yy"))
        if self.name == "rmse":
            return as_values(np.sqrt(ratio(se, n)))
        if self.name == "mae":
            return as_values(ratio(ae, n))
        total = yy - ratio(y**2, n)
        return as_values(np.where(total > 0, 1 - ratio(se, total), np.nan))
