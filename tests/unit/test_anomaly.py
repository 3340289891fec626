"""The anomaly detector (sagewatch.metrics.anomaly): seeded and byte-identical on refit, scores in
[0, 1], nulls and unseen categories handled, inputs constant in the reference, integers past 2^53
and columns of another type scored without failing, its reference cutoff calibrated (far outliers
above it), and its ranking of planted outliers in real tabular data against scikit-learn's
IsolationForest fitted on the same reference (ROC AUC within 0.02; the Spearman correlation of the
two scores is printed)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import spearmanr
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from tests.factories import model_of

from sagewatch.metrics import anomaly

SPLITS = 5


def numeric_model(names: list[str], categorical: tuple[str, ...] = ()) -> Any:
    """A regression model whose inputs are `names` (FLOAT, or STRING: encoded as categories)."""
    inputs = [
        {"name": n, "stage": "PIPELINE_INPUT", "value_type": "STRING"}
        if n in categorical
        else {"name": n, "stage": "PIPELINE_INPUT", "value_type": "FLOAT"}
        for n in names
    ]
    return model_of(
        {
            "partner_model_id": "anomalies",
            "output_type": "REGRESSION",
            "attributes": [
                *inputs,
                {"name": "prediction", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"},
                {"name": "truth", "stage": "GROUND_TRUTH", "value_type": "FLOAT"},
            ],
            "pred_to_ground_truth_map": {"prediction": "truth"},
        }
    )


def planted(
    data: np.ndarray, seed: int, shiftable: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded 70/30 split: (reference, held-out rows with 10% planted outliers, is-outlier, which
    held-out rows are outliers' copies). An outlier is a held-out row with 3 of the `shiftable`
    columns moved 3 reference standard deviations up or down."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    cut = int(len(data) * 0.7)
    reference, held_out = data[order[:cut]], data[order[cut:]]
    spread = reference.std(axis=0)
    chosen = rng.choice(len(held_out), len(held_out) // 10, replace=False)
    outliers = held_out[chosen].copy()
    for row in outliers:
        columns = rng.choice(shiftable, 3, replace=False)
        row[columns] += rng.choice([-1.0, 1.0], 3) * 3.0 * spread[columns]
    rows = np.vstack([held_out, outliers])
    return reference, rows, np.r_[np.zeros(len(held_out)), np.ones(len(outliers))], chosen


def table_of(values: np.ndarray, names: list[str]) -> pa.Table:
    return pa.table({name: values[:, i] for i, name in enumerate(names)})


def test_breast_cancer_planted_outliers_rank_as_scikit_learns_isolation_forest() -> None:
    # GIVEN scikit-learn's breast cancer data (30 numeric inputs), 5 seeded splits with planted outliers
    data = load_breast_cancer().data
    names = [f"x{i}" for i in range(data.shape[1])]
    model = numeric_model(names)
    ours, theirs, correlations = [], [], []
    for seed in range(SPLITS):
        reference, rows, outlier, _ = planted(data, seed, list(range(data.shape[1])))

        # WHEN our forest and scikit-learn's are fitted on the same reference and score the rows
        detector = anomaly.fit(table_of(reference, names), model, seed=seed)
        assert detector is not None
        scores = detector.score(table_of(rows, names)).to_numpy()
        reference_scores = -IsolationForest(random_state=seed).fit(reference).score_samples(rows)
        ours.append(roc_auc_score(outlier, scores))
        theirs.append(roc_auc_score(outlier, reference_scores))
        correlations.append(spearmanr(scores, reference_scores).statistic)

    # THEN the outliers rank alike: mean ROC AUC within 0.02, scores strongly rank-correlated
    print(
        f"breast cancer: AUC ours {np.mean(ours):.4f}, scikit-learn {np.mean(theirs):.4f}, "
        f"Spearman {np.mean(correlations):.3f}"
    )
    assert abs(np.mean(ours) - np.mean(theirs)) <= 0.02
    assert np.mean(ours) > 0.6  # the outliers are found at all (0.5 is chance)
    assert min(correlations) > 0.9


def test_a_categorical_input_ranks_as_scikit_learn_with_one_hot_columns() -> None:
    # GIVEN the diabetes data with `sex` as a categorical string input; a third of the planted outliers
    # also have a sex the reference never had
    raw = load_diabetes().data
    sexes = np.where(raw[:, 1] > 0, "female", "male")
    numeric = np.delete(raw, 1, axis=1)
    names = [f"x{i}" for i in range(numeric.shape[1])]
    model = numeric_model([*names, "sex"], categorical=("sex",))
    ours, theirs, correlations = [], [], []
    for seed in range(SPLITS):
        indexed = np.column_stack([numeric, np.arange(len(raw))])
        reference, rows, outlier, _ = planted(indexed, seed, list(range(numeric.shape[1])))
        row_sex = sexes[rows[:, -1].astype(int)].astype(object)
        planted_rows = np.flatnonzero(outlier)
        row_sex[planted_rows[: len(planted_rows) // 3]] = "unknown"
        reference_sex = sexes[reference[:, -1].astype(int)]

        # WHEN ours reads the category and scikit-learn its one-hot columns (an unseen one: all 0)
        reference_table = table_of(reference[:, :-1], names).append_column("sex", pa.array(reference_sex))
        detector = anomaly.fit(reference_table, model, seed=seed)
        assert detector is not None
        rows_table = table_of(rows[:, :-1], names).append_column("sex", pa.array(row_sex.tolist()))
        scores = detector.score(rows_table).to_numpy()

        def one_hot(values: np.ndarray, numbers: np.ndarray) -> np.ndarray:
            return np.column_stack([numbers, values == "female", values == "male"]).astype(float)

        forest = IsolationForest(random_state=seed).fit(one_hot(reference_sex, reference[:, :-1]))
        reference_scores = -forest.score_samples(one_hot(row_sex, rows[:, :-1]))
        ours.append(roc_auc_score(outlier, scores))
        theirs.append(roc_auc_score(outlier, reference_scores))
        correlations.append(spearmanr(scores, reference_scores).statistic)

    # THEN the outliers rank alike
    print(
        f"diabetes with a categorical input: AUC ours {np.mean(ours):.4f}, scikit-learn "
        f"{np.mean(theirs):.4f}, Spearman {np.mean(correlations):.3f}"
    )
    assert abs(np.mean(ours) - np.mean(theirs)) <= 0.02
    assert min(correlations) > 0.85


def gaussian_reference(rows: int, seed: int = 0) -> tuple[pa.Table, Any]:
    """`rows` seeded rows of three normal inputs and a three-valued category, with the model."""
    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows),
            "c": rng.normal(size=rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.6, 0.3, 0.1]),
        }
    )
    return table, numeric_model(["a", "b", "c", "plan"], categorical=("plan",))


def test_a_refit_on_the_same_reference_is_the_same_detector_byte_for_byte() -> None:
    # GIVEN a reference
    reference, model = gaussian_reference(3000)

    # WHEN it is fitted twice with the default seed, and once with another
    first, second = anomaly.fit(reference, model), anomaly.fit(reference, model)
    other = anomaly.fit(reference, model, seed=7)

    # THEN the two are identical as stored; another seed grows other trees
    assert first is not None and second is not None and other is not None
    assert first.to_bytes() == second.to_bytes()
    assert other.to_bytes() != first.to_bytes()
    # and the stored detector scores as the fitted one
    rows = gaussian_reference(500, seed=1)[0]
    stored = anomaly.Detector.from_bytes(first.to_bytes())
    assert stored.score(rows).to_pylist() == first.score(rows).to_pylist()


def test_scores_lie_in_0_1_whatever_the_rows_hold() -> None:
    # GIVEN a fitted detector and rows with nulls, non-finite numbers, an unseen category, a missing input
    reference, model = gaussian_reference(2000)
    detector = anomaly.fit(reference, model)
    assert detector is not None
    rows = pa.table(
        {
            "a": pa.array([0.0, None, float("nan"), float("inf"), -1e300, 3.0]),
            "b": pa.array([0.0, 1.0, 2.0, None, 0.0, 1e9]),
            "plan": pa.array(["basic", None, "enterprise", "pro", "plus", "basic"]),
        }
    )

    # WHEN they are scored
    scores = detector.score(rows).to_numpy()

    # THEN every score is a number in [0, 1], and an ordinary row scores below a far-off one
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[0] < scores[5]


def test_a_rare_or_unseen_category_and_an_unexpected_null_are_isolated_fast() -> None:
    # GIVEN a detector on a reference without nulls, where "pro" is a tenth of the rows
    reference, model = gaussian_reference(3000)
    detector = anomaly.fit(reference, model)
    assert detector is not None
    ordinary = {"a": 0.0, "b": 0.0, "c": 0.0}

    # WHEN ordinary rows differ only in their plan, or in one null
    rows = pa.Table.from_pylist(
        [
            {**ordinary, "plan": "basic"},
            {**ordinary, "plan": "pro"},
            {**ordinary, "plan": "enterprise"},
            {**ordinary, "a": None, "plan": "basic"},
        ]
    )
    basic, rare, unseen, null = detector.score(rows).to_pylist()

    # THEN the rarer the category, the higher the score (an unseen one is at least as high as the
    # rarest: its share, 0, is past every split); a null the reference never had is anomalous
    assert basic < rare <= unseen
    assert null > basic


def test_nulls_common_in_the_reference_are_ordinary() -> None:
    # GIVEN a reference where input a is null in half the rows
    reference, model = gaussian_reference(3000)
    a = reference.column("a").to_numpy()
    half_null = pa.array(np.where(np.arange(len(a)) % 2 == 0, np.nan, a), from_pandas=True)
    detector = anomaly.fit(reference.set_column(0, "a", half_null), model)
    assert detector is not None

    # WHEN an ordinary row has a null a
    rows = pa.Table.from_pylist([{"a": None, "b": 0.0, "c": 0.0, "plan": "basic"}])

    # THEN it scores below the reference's median
    assert detector.score(rows).to_pylist()[0] < detector.quantiles["0.5"]


@pytest.mark.parametrize(
    ("reference_rows", "at_least", "at_most"), [(1000, 0.005, 0.019), (10_000, 0.007, 0.013)]
)
def test_about_one_in_a_hundred_rows_like_the_reference_is_above_the_cutoff(
    reference_rows: int, at_least: float, at_most: float
) -> None:
    # GIVEN a detector fitted on seeded rows, and 100,000 new rows from the same distribution
    reference, model = gaussian_reference(reference_rows)
    detector = anomaly.fit(reference, model)
    assert detector is not None
    rows = gaussian_reference(100_000, seed=11)[0]

    # WHEN they are scored
    above = (detector.score(rows).to_numpy() > detector.cutoff).mean()

    # THEN the share above the cutoff is near its quantile, 1%, and the share the detector counted
    # among its reference scores: the 99th percentile of 1,000 scores lies between the 10th and 11th
    # largest, so the share above it is uncertain (a Beta(11, 990) law: 0.5% to 1.9% in 99 of 100
    # references), of 10,000 between the 100th and 101st (0.75% to 1.25%)
    assert at_least <= above <= at_most, above
    assert detector.above_cutoff / detector.scored_rows == pytest.approx(0.01, abs=0.001)


@pytest.mark.parametrize("reference_rows", [100, 300, 1000])
def test_far_outliers_score_above_the_cutoff_whatever_the_references_size(reference_rows: int) -> None:
    # GIVEN detectors on references of a few hundred rows, where the forest can only split within
    # the reference's range (so a far-off row scores about as the most extreme reference row does)
    for seed in range(5):
        reference, model = gaussian_reference(reference_rows, seed=seed)
        detector = anomaly.fit(reference, model)
        assert detector is not None

        # WHEN rows far off the reference in every numeric input, in several directions, are scored
        far = pa.table(
            {
                "a": [8.0, 8.0, -8.0, 50.0],
                "b": [8.0, -8.0, 8.0, 50.0],
                "c": [-8.0, 8.0, 8.0, 50.0],
                "plan": ["basic", "pro", "plus", "basic"],
            }
        )

        # THEN every one is above the cutoff (the 99th percentile, not the 99.9th: from a few hundred
        # reference scores that is the largest, and far-off rows tie with it)
        assert min(detector.score(far).to_pylist()) > detector.cutoff, seed


def test_a_row_unlike_an_input_constant_in_the_reference_scores_one() -> None:
    # GIVEN a reference where age is always 30, region always "north", income always null, and
    # only x varies
    rng = np.random.default_rng(0)
    rows = 200
    reference = pa.table(
        {
            "age": pa.array(np.full(rows, 30), pa.int64()),
            "region": ["north"] * rows,
            "income": pa.nulls(rows, pa.float64()),
            "x": rng.normal(size=rows),
        }
    )
    model = numeric_model(["age", "region", "income", "x"], categorical=("region",))
    detector = anomaly.fit(reference, model)
    assert detector is not None
    ordinary = {"age": 30, "region": "north", "income": None, "x": 0.0}

    # WHEN rows like it, or differing in one constant input only, are scored
    cases = [
        ordinary,
        {**ordinary, "age": 31},
        {**ordinary, "age": None},
        {**ordinary, "region": "south"},
        {**ordinary, "region": None},
        {**ordinary, "income": 1000.0},
        {**ordinary, "income": -1.0},  # the value nulls are encoded as: still a value the reference never had
    ]
    scores = detector.score(pa.Table.from_pylist(cases)).to_pylist()

    # THEN the ordinary row scores as the forest says (below the cutoff), every other scores 1.0
    assert scores[0] < detector.cutoff
    assert scores[1:] == [1.0] * 6
    # and the stored detector says the same
    assert (
        anomaly.Detector.from_bytes(detector.to_bytes()).score(pa.Table.from_pylist(cases)).to_pylist()
        == scores
    )


def test_a_reference_without_any_varying_input_still_flags_rows_unlike_it() -> None:
    # GIVEN a reference whose only inputs are constant (nothing to split on)
    reference = pa.table({"plan": ["basic"] * 50, "a": [1.5] * 50})
    detector = anomaly.fit(reference, numeric_model(["plan", "a"], categorical=("plan",)))
    assert detector is not None

    # WHEN rows like it and unlike it are scored
    rows = pa.Table.from_pylist(
        [{"plan": "basic", "a": 1.5}, {"plan": "pro", "a": 1.5}, {"plan": "basic", "a": 2.0}]
    )
    like, other_plan, other_a = detector.score(rows).to_pylist()

    # THEN the ones unlike it score 1.0, above the cutoff; the one like it 0.5, not above it
    assert (like, other_plan, other_a) == (pytest.approx(0.5), 1.0, 1.0)
    assert like <= detector.cutoff < other_plan


def test_integers_past_2_53_and_columns_of_another_type_are_scored_not_refused() -> None:
    # GIVEN a reference holding the int64 extremes in an integer input
    rows = 100
    age = np.arange(rows, dtype=np.int64)
    age[0], age[1] = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    reference = pa.table({"a": age, "b": np.linspace(0.0, 1.0, rows)})
    model = numeric_model(["a", "b"])
    detector = anomaly.fit(reference, model)
    assert detector is not None

    # WHEN rows with an integer past 2^53, or a column of strings and one of lists, are scored
    huge = detector.score(pa.table({"a": pa.array([2**60, 3], pa.int64()), "b": [0.5, 0.5]}))
    other = detector.score(pa.table({"a": ["x", "3"], "b": pa.array([[1.0], [2.0]])}))

    # THEN each gets a score in [0, 1] (a value that cannot be read counts as a null)
    for scores in (huge.to_pylist(), other.to_pylist()):
        assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)


def test_no_detector_without_inputs_or_enough_reference_rows() -> None:
    # GIVEN a reference of fewer than MIN_REFERENCE_ROWS rows
    reference, model = gaussian_reference(anomaly.MIN_REFERENCE_ROWS - 1)

    # THEN there is nothing to fit
    assert anomaly.fit(reference, model) is None


def test_scores_set_the_anomaly_score_column_or_leave_it_null() -> None:
    # GIVEN rows that already carry a null anomaly_score column (as parsed)
    rows = pa.table({"a": [1.0, 2.0], "anomaly_score": pa.nulls(2, pa.float64())})

    # WHEN scores are set, or there is no detector
    scored = anomaly.with_scores(rows, pa.array([0.25, 0.75]))
    unscored = anomaly.with_scores(pa.table({"a": [1.0]}), None)

    # THEN the column holds the scores (once), or nulls
    assert scored.column_names == ["a", "anomaly_score"]
    assert scored.column("anomaly_score").to_pylist() == [0.25, 0.75]
    assert unscored.column("anomaly_score").to_pylist() == [None]
