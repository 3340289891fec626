"""Hotspots: the regions of the input space where a model does markedly worse than overall.

Method: a regression tree (CART) grown on each labelled row's error, then a test of each node on
rows the tree did not see.

- The error: classification, 1 where the predicted class differs from the label (the predicted
  class and the label as the query functions derive them: threshold and positive class for binary
  models, the largest probability for multiclass); regression, the absolute error |p - y|.
- Honest halves: the labelled rows are split at random (seeded) into growing rows and testing rows.
  The tree is grown on the first half; each node's significance is tested on the second, so the
  search over splits cannot make noise look significant.
- Splits: every input (PIPELINE_INPUT attribute). Numbers: every threshold between consecutive
  distinct values (midpoints, as scikit-learn), evaluated at once with sorted cumulative sums; nulls
  join whichever side lowers the impurity more, and "null against not null" is a candidate too.
  Categories (categorical or STRING attributes): Breiman's ordering of the node's categories by
  their error (worst first), then every threshold on that order (a set split); a null is a category of its own.
  The criterion is the decrease of the sum of squared deviations of the error (for a 0/1 error
  the same split as the Gini impurity's).
- Stopping rules: depth at most `max_depth` (4); each child holds at least
  max(`min_leaf_rows` (25), `min_leaf_share` (1%) of the growing rows); a split must lower the
  sum of squares by at least `min_decrease` (0.1%) of the root's.
- A node (a leaf or an inner node, not the root) is a hotspot when, over the window's labelled rows,
  its error rate is at least `min_gap` (0.05) above the overall one (regression: its mean
  absolute error at least `min_gap_ratio` (25%) above the overall), and it is significantly worse
  than the rest on the testing rows: a one-sided two-sample z-test at `level` (0.01), Bonferroni
  corrected over the nodes tested.
- Ranking: by excess errors, rows x (node error - overall error) (regression: the excess absolute
  error). Hotspots are disjoint: a node inside (or containing) a better-ranked hotspot is left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagewatch.metrics.aggregates import numbers, ratio
from sagewatch.metrics.functions import FUNCTIONS, column
from sagewatch.schema import GROUND_TRUTH_STAGES, Model, OutputType, Stage, ValueType

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1")
REGRESSION_METRICS = ("mae", "rmse")


@dataclass(frozen=True)
class StoppingRules:
    """When the tree stops growing and when a node counts as a hotspot (the module docstring)."""

    max_depth: int = 4
    min_leaf_rows: int = 25
    min_leaf_share: float = 0.01
    min_decrease: float = 0.001
    min_gap: float = 0.05
    min_gap_ratio: float = 0.25
    level: float = 0.01
    seed: int = 0


@dataclass
class Outcomes:
    """Per labelled row: its error, and for classifiers the true and predicted class (indices into
    `classes`); regression also keeps the squared error."""

    kind: str  # "classification" | "regression"
    error: np.ndarray
    actual: np.ndarray | None = None
    predicted: np.ndarray | None = None
    classes: list[str] = field(default_factory=list)
    squared: np.ndarray | None = None


@dataclass
class Feature:
    """An input as the splitter sees it: numbers (NaN for null), or category codes (-1 for null)."""

    name: str
    numeric: bool
    values: np.ndarray
    categories: list[Any] = field(default_factory=list)


@dataclass
class Node:
    """A node of the tree: its rows (a mask over the labelled rows) and the conditions leading to it."""

    id: int
    depth: int
    rows: np.ndarray
    conditions: list[dict[str, Any]]
    parent: int | None = None
    children: list[int] = field(default_factory=list)


def outcomes(model: Model, table: pa.Table) -> tuple[np.ndarray, Outcomes]:
    """Which rows are labelled, and their outcomes, derived by the query functions' own counting."""
    types = {a.name: a.value_type for a in model.attributes}
    if model.output_type is OutputType.REGRESSION:
        states = FUNCTIONS["mae"]("mae", model, {}, types, "hotspots").contributions(table).states
        labelled = _array(states["n"][0]) > 0
        return labelled, Outcomes(
            "regression", _array(states["ae"][0])[labelled], squared=_array(states["se"][0])[labelled]
        )
    predictions = model.by_stage(Stage.PREDICTED_VALUE)
    if len(predictions) > 2:
        name = "accuracyRateMulticlass"
        cell = FUNCTIONS[name](name, model, {}, types, "hotspots").contributions(table).extra_keys["__cell"]
        cells = np.nan_to_num(cell.to_numpy(zero_copy_only=False).astype(float), nan=-1).astype(np.int64)
        labelled = cells >= 0
        k = len(predictions)
        mapping = model.pred_to_ground_truth_map or {}
        actual, predicted = cells[labelled] // k, cells[labelled] % k
        names = [str(mapping.get(p.name, p.name)) for p in predictions]
    else:
        states = FUNCTIONS["accuracyRate"]("accuracyRate", model, {}, types, "hotspots").contributions(table)
        tp, fp, tn, fn = (_array(states.states[k][0]) > 0 for k in ("tp", "fp", "tn", "fn"))
        labelled = tp | fp | tn | fn
        actual = (tp | fn)[labelled].astype(np.int64)
        predicted = (tp | fp)[labelled].astype(np.int64)
        names = binary_class_names(model)
    return labelled, Outcomes("classification", (actual != predicted).astype(float), actual, predicted, names)


def binary_class_names(model: Model) -> list[str]:
    """[negative, positive] class names of a binary model, as its ground truth spells them."""
    mapping = model.pred_to_ground_truth_map or {}
    positive_prediction = model.positive_predicted_attribute
    positive = mapping.get(positive_prediction or "", 1)
    others = [v for k, v in mapping.items() if k != positive_prediction]
    if others:
        return [str(others[0]), str(positive)]
    truths = model.by_stage(*GROUND_TRUTH_STAGES)
    categories = [c.value for c in (truths[0].categories or [])] if truths else []
    rest = [c for c in categories if c != str(positive)]
    return [rest[0] if rest else f"not {positive}", str(positive)]


def features(model: Model, table: pa.Table) -> list[Feature]:
    """The model's inputs: numbers (integers, floats, booleans, times) or category codes."""
    found = []
    for attribute in model.by_stage(Stage.PIPELINE_INPUT):
        if attribute.name not in table.column_names:
            continue
        if attribute.categorical or attribute.value_type is ValueType.STRING:
            values = column(table, attribute.name)
            encoded = pc.dictionary_encode(
                values.cast(pa.string()) if pa.types.is_null(values.type) else values
            )
            codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
            found.append(Feature(attribute.name, False, codes, encoded.dictionary.to_pylist()))
        else:
            values = numbers(table, attribute.name).to_numpy(zero_copy_only=False).astype(float)
            found.append(Feature(attribute.name, True, values))
    return found


# -- the tree -----------------------------------------------------------------------------------------


@dataclass
class Split:
    """The best split of a node on one feature: its gain (decrease of the sum of squares) and the
    conditions of each side (a row not meeting the left one goes right)."""

    gain: float
    left_condition: dict[str, Any]
    right_condition: dict[str, Any]


def _gains(sums: np.ndarray, counts: np.ndarray, total: float, n: float, minimum: float) -> np.ndarray:
    """Decrease of the sum of squares for each candidate left side (sums, counts); -inf where a side
    holds fewer than `minimum` rows."""
    right_sums, right_counts = total - sums, n - counts
    ok = (counts >= minimum) & (right_counts >= minimum)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = sums**2 / counts + right_sums**2 / right_counts - total**2 / n
    return np.where(ok, gain, -np.inf)


def best_numeric_split(
    values: np.ndarray, order: np.ndarray, target: np.ndarray, mask: np.ndarray, name: str, minimum: float
) -> Split | None:
    """The best threshold of a numeric feature over the rows in `mask` (`order` sorts all rows by
    value, nulls last); nulls join the better side, or are split from the rest."""
    inside = order[mask[order]]
    present = inside[~np.isnan(values[inside])]
    nulls = inside[np.isnan(values[inside])]
    y, x = target[present], values[present]
    total, n = float(target[inside].sum()), float(len(inside))
    null_sum, null_n = float(target[nulls].sum()), float(len(nulls))
    if len(present) == 0:
        return None
    sums = np.cumsum(y)[:-1]
    counts = np.arange(1, len(present), dtype=float)
    distinct = x[1:] != x[:-1]  # a threshold only between two different values
    candidates = [
        (_gains(sums, counts, total, n, minimum), False),  # nulls on the right
        (_gains(sums + null_sum, counts + null_n, total, n, minimum), True),  # nulls on the left
    ]
    best: tuple[float, int, bool] | None = None
    for gains, nulls_left in candidates:
        gains = np.where(distinct, gains, -np.inf)
        if len(gains) and np.isfinite(gains.max()) and (best is None or gains.max() > best[0]):
            best = (float(gains.max()), int(np.argmax(gains)), nulls_left)
    if null_n:  # nulls against the rest
        apart = _gains(np.array([total - null_sum]), np.array([n - null_n]), total, n, minimum)[0]
        if np.isfinite(apart) and (best is None or apart > best[0]):
            return Split(
                float(apart), {"attribute": name, "op": "is not null"}, {"attribute": name, "op": "is null"}
            )
    if best is None:
        return None
    gain, at, nulls_left = best
    threshold = float((x[at] + x[at + 1]) / 2)
    if threshold == x[at + 1]:  # two adjacent floats: the midpoint rounds up
        threshold = float(x[at])
    seen_nulls = null_n > 0  # a node without nulls says nothing of them: neither side claims them
    return Split(
        gain,
        {"attribute": name, "op": "<=", "value": threshold, "nulls": seen_nulls and nulls_left},
        {"attribute": name, "op": ">", "value": threshold, "nulls": seen_nulls and not nulls_left},
    )


def best_categorical_split(
    feature: Feature, target: np.ndarray, mask: np.ndarray, minimum: float
) -> Split | None:
    """Breiman's set split: the node's categories ordered by their mean error, the best threshold on
    that order; the null category (code -1) takes part like any other."""
    codes = feature.values[mask] + 1  # 0 is null
    size = len(feature.categories) + 1
    counts = np.bincount(codes, minlength=size).astype(float)
    sums = np.bincount(codes, weights=target[mask], minlength=size)
    seen = np.flatnonzero(counts > 0)
    if len(seen) < 2:
        return None
    ranked = seen[np.argsort(-sums[seen] / counts[seen], kind="stable")]  # worst first: they go left
    gains = _gains(
        np.cumsum(sums[ranked])[:-1], np.cumsum(counts[ranked])[:-1], sums.sum(), counts.sum(), minimum
    )
    if not np.isfinite(gains.max()):
        return None
    at = int(np.argmax(gains))
    # the right side is "not in" the left's set: a category the growing rows never showed goes right
    chosen = _sorted([None if c == 0 else feature.categories[c - 1] for c in ranked[: at + 1]])
    return Split(
        float(gains[at]),
        {"attribute": feature.name, "op": "in", "value": chosen},
        {"attribute": feature.name, "op": "not in", "value": chosen},
    )


def _sorted(values: list[Any]) -> list[Any]:
    return sorted(values, key=lambda v: (v is None, str(v)))


def grow(
    target: np.ndarray, features: list[Feature], growing: np.ndarray, rules: StoppingRules
) -> list[Node]:
    """The tree grown on the growing rows (`growing`, a mask); nodes' rows span every labelled row
    (a row goes where its values send it), so nodes can be tested and reported on the others."""
    n_grow = int(growing.sum())
    minimum = max(rules.min_leaf_rows, math.ceil(rules.min_leaf_share * n_grow))
    root_ss = float(((target[growing] - target[growing].mean()) ** 2).sum()) if n_grow else 0.0
    orders = {
        f.name: np.argsort(np.where(np.isnan(f.values), np.inf, f.values), kind="stable")
        for f in features
        if f.numeric
    }
    nodes = [Node(0, 0, np.ones(len(target), dtype=bool), [])]
    frontier = [0]
    while frontier:
        next_frontier = []
        for node_id in frontier:
            node = nodes[node_id]
            if node.depth >= rules.max_depth:
                continue
            split = _best_split(target, features, orders, node.rows & growing, minimum)
            if split is None or split.gain < rules.min_decrease * root_ss or split.gain <= 0:
                continue
            left_rows = _route(split.left_condition, features, node.rows)
            for rows, condition in (
                (left_rows, split.left_condition),
                (node.rows & ~left_rows, split.right_condition),
            ):
                child = Node(len(nodes), node.depth + 1, rows, [*node.conditions, condition], parent=node_id)
                nodes.append(child)
                node.children.append(child.id)
                next_frontier.append(child.id)
        frontier = next_frontier
    return nodes


def _best_split(
    target: np.ndarray,
    features: list[Feature],
    orders: dict[str, np.ndarray],
    mask: np.ndarray,
    minimum: float,
) -> Split | None:
    best: Split | None = None
    for feature in features:
        if feature.numeric:
            found = best_numeric_split(
                feature.values, orders[feature.name], target, mask, feature.name, minimum
            )
        else:
            found = best_categorical_split(feature, target, mask, minimum)
        if found is not None and (best is None or found.gain > best.gain):
            best = found
    return best


def _route(condition: dict[str, Any], features: list[Feature], rows: np.ndarray) -> np.ndarray:
    """The rows (within `rows`) meeting a condition: how every row, grown on or not, is sent down."""
    return rows & meets(condition, next(f for f in features if f.name == condition["attribute"]))


def meets(condition: dict[str, Any], feature: Feature) -> np.ndarray:
    """Which rows meet one condition of a hotspot's rule."""
    op, values = condition["op"], feature.values
    if op in ("is null", "is not null"):
        null = np.isnan(values) if feature.numeric else values < 0
        return null if op == "is null" else ~null
    if op in ("in", "not in"):
        wanted = [i for i, c in enumerate(feature.categories) if c in condition["value"]]
        codes = [*wanted, *([-1] if None in condition["value"] else [])]
        found = np.isin(values, codes)
        return found if op == "in" else ~found
    with np.errstate(invalid="ignore"):
        found = values <= condition["value"] if op == "<=" else values > condition["value"]
    return found | (np.isnan(values) & bool(condition.get("nulls")))


# -- hotspots -----------------------------------------------------------------------------------------


def search(
    model: Model,
    table: pa.Table,
    rules: StoppingRules | None = None,
    metric: str | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """The window's hotspots, ranked, with the overall values; `metric` and `threshold` keep only
    hotspots whose metric is below the threshold (above it, for regression errors)."""
    rules = rules or StoppingRules()
    labelled, found = outcomes(model, table)
    inputs = [_only(f, labelled) for f in features(model, table)]
    target = found.error
    n = len(target)
    growing = np.random.default_rng(rules.seed).permutation(n) < (n + 1) // 2
    nodes = grow(target, inputs, growing, rules) if n else []
    overall = describe(found, np.ones(n, dtype=bool))
    candidates = []
    tested = max(1, len(nodes) - 1)
    for node in nodes[1:]:
        p_value = _p_value(target, node.rows & ~growing, ~node.rows & ~growing)
        values = describe(found, node.rows)
        gap_ok = (
            values["error"] - overall["error"] >= rules.min_gap
            if found.kind == "classification"
            else values["error"] >= overall["error"] * (1 + rules.min_gap_ratio)
        )
        if not gap_ok or p_value * tested > rules.level:
            continue
        if metric is not None and threshold is not None:
            value = values[metric]
            if value is None or (
                value >= threshold if metric in CLASSIFICATION_METRICS else value <= threshold
            ):
                continue
        excess = values["n_samples"] * (values["error"] - overall["error"])
        candidates.append((excess, node, values, min(1.0, p_value * tested)))
    candidates.sort(key=lambda c: -c[0])
    chosen: list[tuple[float, Node, dict[str, Any], float]] = []
    for candidate in candidates:
        if not any(_related(candidate[1], other[1], nodes) for other in chosen):
            chosen.append(candidate)
    hotspots = [
        {
            "rank": rank,
            **rule_shapes(node.conditions),
            **values,
            "support": values["n_samples"] / n if n else None,
            "overall": {k: v for k, v in overall.items() if k not in ("gt_to_info", "impurity")},
            "excess_errors": excess,
            "p_value": p_value,
            "rows": np.flatnonzero(labelled)[node.rows],
        }
        for rank, (excess, node, values, p_value) in enumerate(chosen, start=1)
    ]
    return {"kind": found.kind, "labelled": n, "overall": overall, "hotspots": hotspots, "nodes": len(nodes)}


def _only(feature: Feature, labelled: np.ndarray) -> Feature:
    return Feature(feature.name, feature.numeric, feature.values[labelled], feature.categories)


def _related(a: Node, b: Node, nodes: list[Node]) -> bool:
    """Whether one node lies inside the other (they share rows by construction then)."""
    return _is_ancestor(a, b, nodes) or _is_ancestor(b, a, nodes)


def _is_ancestor(ancestor: Node, node: Node, nodes: list[Node]) -> bool:
    while node.parent is not None:
        if node.parent == ancestor.id:
            return True
        node = nodes[node.parent]
    return False


def _p_value(target: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> float:
    """One-sided two-sample z-test: is the mean error inside higher than outside? (Welch's standard
    error; for a 0/1 error the unpooled two-proportion test)."""
    a, b = target[inside], target[outside]
    if len(a) < 2 or len(b) < 2:
        return 1.0
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    if se == 0:
        return 0.0 if a.mean() > b.mean() else 1.0
    return 0.5 * math.erfc((a.mean() - b.mean()) / se / math.sqrt(2))


def describe(found: Outcomes, rows: np.ndarray) -> dict[str, Any]:
    """A set of rows' values: n_samples, error, impurity and the metrics (classifiers: accuracy,
    precision, recall, f1 and gt_to_info per class; regression: mae, rmse)."""
    n = int(rows.sum())
    error = float(found.error[rows].mean()) if n else math.nan
    if found.kind == "regression":
        return {
            "n_samples": n,
            "error": error,
            "mae": _finite(error),
            "rmse": _finite(math.sqrt(found.squared[rows].mean())) if n else None,
            "impurity": _finite(float(found.error[rows].var())) if n else None,
        }
    k = len(found.classes)
    matrix = np.bincount(found.actual[rows] * k + found.predicted[rows], minlength=k * k).reshape(k, k)
    tp = np.diag(matrix).astype(float)
    precision = ratio(tp, matrix.sum(axis=0).astype(float))
    recall = ratio(tp, matrix.sum(axis=1).astype(float))
    f1 = ratio(2 * tp, (matrix.sum(axis=0) + matrix.sum(axis=1)).astype(float))
    if k == 2:  # the positive class's, as the query functions define them
        summary = (precision[1], recall[1], f1[1])
    else:  # macro, over the classes present
        present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
        summary = tuple(
            float(np.mean(np.nan_to_num(v[present]))) if present.any() else math.nan
            for v in (precision, recall, f1)
        )
    return {
        "n_samples": n,
        "error": error,
        "accuracy": _finite(1 - error),
        "precision": _finite(summary[0]),
        "recall": _finite(summary[1]),
        "f1": _finite(summary[2]),
        "impurity": _finite(2 * error * (1 - error)),  # Gini of the error, as Arthur's
        "gt_to_info": {
            found.classes[i]: {
                "count": int(matrix[i].sum()),
                "class_precision": _finite(precision[i]),
                "class_recall": _finite(recall[i]),
                "class_f1": _finite(f1[i]),
                "pred_to_count": {found.classes[j]: int(matrix[i, j]) for j in range(k) if matrix[i, j]},
            }
            for i in range(k)
            if matrix[i].sum()
        },
    }


def rule_shapes(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """A path's conditions merged per attribute: `conditions` (one per attribute: a range with its
    nulls, a set, or is (not) null) and Arthur's `rules` {attribute: {"gt", "lte", "in", ...}}."""
    merged: dict[str, dict[str, Any]] = {}
    for condition in conditions:
        name, op = condition["attribute"], condition["op"]
        rule = merged.setdefault(name, {})
        if op in ("is null", "is not null"):
            rule["null"] = op == "is null"
        elif op == "in":
            current = rule.get("in")
            rule["in"] = (
                condition["value"] if current is None else [v for v in current if v in condition["value"]]
            )
        elif op == "not in":
            rule["not in"] = _sorted([*rule.get("not in", []), *condition["value"]])
        else:
            bound = "lte" if op == "<=" else "gt"
            value = condition["value"]
            keep = min if bound == "lte" else max
            rule[bound] = value if bound not in rule else keep(rule[bound], value)
            rule["null"] = rule.get("null", True) and bool(condition.get("nulls"))
    flat = []
    for name, rule in merged.items():
        if "in" in rule:  # a set, less what a later split took out
            rule["in"] = [v for v in rule["in"] if v not in rule.pop("not in", [])]
            flat.append({"attribute": name, "op": "in", "value": rule["in"]})
            continue
        if "not in" in rule:
            flat.append({"attribute": name, "op": "not in", "value": rule["not in"]})
            continue
        if "gt" in rule:
            flat.append({"attribute": name, "op": ">", "value": rule["gt"], "nulls": rule["null"]})
        if "lte" in rule:
            flat.append({"attribute": name, "op": "<=", "value": rule["lte"], "nulls": rule["null"]})
        if "gt" not in rule and "lte" not in rule:
            flat.append({"attribute": name, "op": "is null" if rule["null"] else "is not null"})
    return {"rules": merged, "conditions": flat}


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _array(values: pa.Array) -> np.ndarray:
    return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
