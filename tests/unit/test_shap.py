"""KernelSHAP (sagewatch.metrics.shap) against what attributions must be: local accuracy, exact
Shapley values (by the subset formula written here) up to 8 inputs, the closed form of a linear
model, categorical inputs taken whole from the background."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from math import factorial

import numpy as np
import pytest

from sagewatch.metrics import shap

Predict = Callable[[list[np.ndarray]], np.ndarray]


def explain(x: list, background: list[np.ndarray], predict: Predict, nsamples: int | None = None) -> tuple:
    """The module's three steps, with `predict` standing where the endpoint is."""
    found = shap.coalitions(len(x), nsamples, seed=3)
    values = shap.coalition_values(
        predict(shap.perturbed_rows(x, background, found.mask)), len(background[0])
    )
    phi = shap.attributions(values, found.mask, found.weights, values[1], values[0])
    return phi, values[1], values[0]


def value_of(coalition: tuple[int, ...], x: list, background: list[np.ndarray], predict: Predict) -> float:
    """v(S): the mean prediction over the background with x's values on S (computed row by row)."""
    rows = len(background[0])
    columns = [
        np.array([x[j]] * rows, dtype=object) if j in coalition else background[j].astype(object)
        for j in range(len(x))
    ]
    return float(np.mean(predict(columns)))


def brute_force_shapley(x: list, background: list[np.ndarray], predict: Predict) -> np.ndarray:
    """phi_i = sum over S without i of |S|! (M - |S| - 1)! / M! (v(S + i) - v(S))."""
    inputs = len(x)
    phi = np.zeros(inputs)
    for i in range(inputs):
        others = [j for j in range(inputs) if j != i]
        for size in range(inputs):
            for subset in itertools.combinations(others, size):
                weight = factorial(size) * factorial(inputs - size - 1) / factorial(inputs)
                with_i = tuple(sorted((*subset, i)))
                phi[i] += weight * (
                    value_of(with_i, x, background, predict) - value_of(subset, x, background, predict)
                )
    return phi


def nonlinear_model(inputs: int, seed: int) -> Predict:
    """A smooth model with interactions: sigmoid of a quadratic form plus a sine."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=inputs)
    pairs = rng.normal(scale=0.5, size=(inputs, inputs))

    def predict(columns: list[np.ndarray]) -> np.ndarray:
        z = np.column_stack([np.asarray(c, dtype=float) for c in columns])
        score = z @ w + np.einsum("ni,ij,nj->n", z, pairs, z) / inputs + np.sin(z[:, 0] * z[:, -1])
        return 1 / (1 + np.exp(-score))

    return predict


def data(inputs: int, rows: int, seed: int) -> tuple[list, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    background = [rng.normal(size=rows) for _ in range(inputs)]
    return list(rng.normal(scale=1.5, size=inputs)), background


@pytest.mark.parametrize("inputs", [4, 8, 12, 30])
def test_attributions_add_up_to_the_prediction_minus_the_background_mean(inputs: int) -> None:
    # GIVEN a nonlinear model with interactions and a background of 20 rows
    x, background = data(inputs, 20, seed=inputs)
    predict = nonlinear_model(inputs, seed=inputs)
    # WHEN a row is explained (sampled coalitions above 8 inputs)
    phi, prediction, expected = explain(x, background, predict)
    # THEN the attributions sum to f(x) minus the mean prediction on the background
    assert prediction[0] == pytest.approx(predict([np.array([v]) for v in x])[0], abs=1e-12)
    assert expected[0] == pytest.approx(predict(background).mean(), abs=1e-12)
    assert abs(phi.sum() - (prediction[0] - expected[0])) < 1e-6


@pytest.mark.parametrize("inputs", [1, 2, 3, 5, 8])
def test_up_to_8_inputs_the_attributions_are_the_exact_shapley_values(inputs: int) -> None:
    # GIVEN a nonlinear model, and Shapley values by the subset formula over the same value function
    x, background = data(inputs, 7, seed=10 + inputs)
    predict = nonlinear_model(inputs, seed=10 + inputs)
    exact = brute_force_shapley(x, background, predict)
    # WHEN explained
    phi, _, _ = explain(x, background, predict)
    # THEN every attribution equals its exact Shapley value
    np.testing.assert_allclose(phi[0], exact, atol=1e-9)


def test_a_sample_budget_covering_every_coalition_gives_the_exact_values_above_8_inputs() -> None:
    x, background = data(10, 5, seed=4)
    predict = nonlinear_model(10, seed=4)
    phi, _, _ = explain(x, background, predict, nsamples=2**10)
    np.testing.assert_allclose(phi[0], brute_force_shapley(x, background, predict), atol=1e-9)


@pytest.mark.parametrize("inputs", [6, 12, 30])
def test_a_linear_model_gets_its_closed_form(inputs: int) -> None:
    # GIVEN f(z) = w.z + c, whose Shapley values are w_i (x_i - mean of the background's input i)
    x, background = data(inputs, 25, seed=inputs)
    w = np.random.default_rng(inputs).normal(size=inputs)

    def predict(columns: list[np.ndarray]) -> np.ndarray:
        return np.column_stack([np.asarray(c, dtype=float) for c in columns]) @ w + 3.0

    # WHEN explained (sampled above 8 inputs: a linear model is fitted exactly by any coalitions)
    phi, _, _ = explain(x, background, predict)
    # THEN each attribution is the closed form
    closed = w * (np.array(x) - np.array([b.mean() for b in background]))
    np.testing.assert_allclose(phi[0], closed, atol=1e-9)


def test_sampled_coalitions_match_exact_shapley_values_closely_at_12_inputs() -> None:
    # GIVEN a 12-input nonlinear model: 4,096 coalitions, of which the default budget takes 2,072
    x, background = data(12, 10, seed=12)
    predict = nonlinear_model(12, seed=12)
    exact = brute_force_shapley(x, background, predict)
    phi, _, _ = explain(x, background, predict)
    # THEN the sampled estimate is close to the exact values (sizes 1-3 and 9-11 enumerated whole)
    assert np.abs(phi[0] - exact).max() < 0.02 * np.abs(exact).max()


def test_a_categorical_input_is_perturbed_as_whole_values() -> None:
    # GIVEN a model over a category (a lookup table) and a number, the category interacting with it
    effect = {"red": 1.0, "green": -0.5, "blue": 0.25}
    background = [np.array(["red", "green", "blue", "green"], dtype=object), np.array([0.0, 1.0, 2.0, 3.0])]
    x = ["blue", 5.0]
    seen: set = set()

    def predict(columns: list[np.ndarray]) -> np.ndarray:
        colour, number = columns
        seen.update(colour.tolist())
        return np.array(
            [effect[c] * (1 + n) for c, n in zip(colour, np.asarray(number, dtype=float), strict=True)]
        )

    # WHEN explained
    phi, prediction, _ = explain(x, background, predict)
    # THEN the model only ever saw real categories, and the values are the exact Shapley values
    assert seen <= set(effect)
    np.testing.assert_allclose(phi[0], brute_force_shapley(x, background, predict), atol=1e-12)
    assert prediction[0] == pytest.approx(0.25 * 6)


def test_each_output_of_a_multiclass_model_is_explained_on_its_own() -> None:
    # GIVEN three class scores (a softmax over three linear scores)
    x, background = data(5, 9, seed=2)
    weights = np.random.default_rng(2).normal(size=(5, 3))

    def scores(columns: list[np.ndarray]) -> np.ndarray:
        z = np.column_stack([np.asarray(c, dtype=float) for c in columns]) @ weights
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    phi, prediction, expected = explain(x, background, scores)
    # THEN one row of attributions per class, each the exact Shapley values of that class's score
    assert phi.shape == (3, 5)
    for k in range(3):
        exact = brute_force_shapley(x, background, lambda c, k=k: scores(c)[:, k])
        np.testing.assert_allclose(phi[k], exact, atol=1e-9)
    np.testing.assert_allclose(phi.sum(axis=1), prediction - expected, atol=1e-12)


def test_coalitions_are_paired_seeded_and_within_the_budget() -> None:
    found = shap.coalitions(30, 500, seed=1)
    assert len(found.mask) <= 500
    assert not found.mask[0].any() and found.mask[1].all()
    rows = {row.tobytes() for row in found.inner}
    assert all((~row).tobytes() in rows for row in found.inner)  # each coalition's complement is in
    assert np.array_equal(found.mask, shap.coalitions(30, 500, seed=1).mask)
    assert found.weights[2:].sum() == pytest.approx(1.0)
    assert len(shap.coalitions(8).mask) == 256 and shap.coalitions(8).exact
