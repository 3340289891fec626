"""KernelSHAP attributions, split so that the model's calls happen outside this module.

A row x is explained against background rows B (a sample of the reference set): the value of a
coalition S of inputs is v(S) = mean over b in B of f(x on S, b elsewhere), so v({}) is the mean
prediction on the background (the expected value) and v(all) = f(x). The attributions phi solve
KernelSHAP's weighted least squares over coalitions, weighted by the Shapley kernel
(M - 1) / (C(M, |S|) |S| (M - |S|)), with sum(phi) = f(x) - v({}) imposed exactly (one unknown is
eliminated), so local accuracy holds to float precision.

- Up to EXACT_INPUTS inputs (and whenever nsamples covers them all) every coalition is evaluated:
  the solution is then exactly the Shapley values of v.
- Above, coalition sizes whose every member fits the sample budget are enumerated whole (sizes 1
  and M-1 first, as the kernel weighs them most), the rest sampled by the kernel in complementary
  pairs; a sampled coalition's weight is its share of the kernel weight left (Lundberg & Lee 2017,
  as the shap package does). The empty and full coalitions are always in, as the constraint.

Inputs are perturbed as whole values taken from the background row (a categorical input is never
averaged or interpolated). Three steps: `coalitions`, `perturbed_rows` (what to send to the model),
then `coalition_values` and `attributions` over what the model answered.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from math import comb
from typing import Any

import numpy as np

# Up to this many inputs every coalition (2^M of them) is evaluated: exact Shapley values.
EXACT_INPUTS = 8


def absolute_name(name: str) -> str:
    """The column holding an input's absolute attribution (never a valid attribute name: no clash)."""
    return f"abs({name})"


def default_nsamples(inputs: int) -> int:
    """Coalitions per explanation when none is configured (the shap package's default)."""
    return 2 * inputs + 2048


@dataclass(frozen=True)
class Coalitions:
    """Coalitions to evaluate: row 0 is the empty one, row 1 the full one, then the rest.

    `weights` are the Shapley kernel weights of the rows (0 for the empty and full ones, which
    enter as the exact constraint instead); `exact` tells whether every coalition is here.
    """

    mask: np.ndarray  # (n, M) bool: True where the input takes x's value
    weights: np.ndarray  # (n,) float
    exact: bool

    @property
    def inner(self) -> np.ndarray:
        """The coalitions other than the empty and the full one (those a model must be asked about)."""
        return self.mask[2:]


def coalitions(inputs: int, nsamples: int | None = None, seed: int = 0) -> Coalitions:
    """The coalitions of `inputs` inputs to evaluate: all of them up to EXACT_INPUTS (or when
    `nsamples` covers 2^M), else `nsamples` (default `default_nsamples`) chosen as the module says."""
    if inputs < 1:
        raise ValueError("an explanation needs at least one input")
    budget = default_nsamples(inputs) if nsamples is None else nsamples
    if inputs <= EXACT_INPUTS or budget >= 2**inputs:
        return _every_coalition(inputs)
    return _sampled_coalitions(inputs, budget, seed)


def _kernel(inputs: int, size: np.ndarray | int) -> np.ndarray:
    """The Shapley kernel weight of one coalition of `size` inputs (0 < size < inputs)."""
    size = np.asarray(size)
    counts = np.array([comb(inputs, int(s)) for s in np.atleast_1d(size)], dtype=float).reshape(size.shape)
    return (inputs - 1) / (counts * size * (inputs - size))


def _every_coalition(inputs: int) -> Coalitions:
    codes = np.arange(2**inputs)
    full = 2**inputs - 1
    order = np.concatenate([[0, full], codes[1:full]])
    mask = ((order[:, None] >> np.arange(inputs)) & 1).astype(bool)
    sizes = mask.sum(axis=1)
    weights = np.zeros(len(order))
    weights[2:] = _kernel(inputs, sizes[2:])
    return Coalitions(mask, weights, exact=True)


def _sampled_coalitions(inputs: int, budget: int, seed: int) -> Coalitions:
    sizes = np.arange(1, inputs)
    share = (inputs - 1) / (sizes * (inputs - sizes))
    share = share / share.sum()  # the kernel's total weight per coalition size, summing to 1
    left = max(budget - 2, 0)
    weight_left = 1.0
    masks, weights = [], []
    smallest_sampled = 1
    for size in range(1, (inputs + 1) // 2 + 1):
        paired = size != inputs - size
        members = comb(inputs, size) * (2 if paired else 1)
        weight = share[size - 1] * (2 if paired else 1)
        if left * weight / weight_left < members - 1e-9:
            break
        chosen = np.zeros((comb(inputs, size), inputs), dtype=bool)
        members_of = np.array(list(itertools.combinations(range(inputs), size)))
        chosen[np.arange(len(chosen))[:, None], members_of] = True
        enumerated = np.vstack([chosen, ~chosen]) if paired else chosen
        masks.append(enumerated)
        weights.append(np.full(len(enumerated), share[size - 1] / comb(inputs, size)))
        left -= members
        weight_left -= weight
        smallest_sampled = size + 1
    pairs = left // 2
    if pairs > 0 and weight_left > 1e-12:
        rng = np.random.default_rng(seed)
        open_sizes = np.arange(smallest_sampled, inputs - smallest_sampled + 1)
        probabilities = share[open_sizes - 1] / share[open_sizes - 1].sum()
        drawn = rng.choice(open_sizes, size=pairs, p=probabilities)
        ranks = np.argsort(np.argsort(rng.random((pairs, inputs)), axis=1), axis=1)
        half = ranks < drawn[:, None]
        sampled, counts = np.unique(np.vstack([half, ~half]), axis=0, return_counts=True)
        masks.append(sampled)
        weights.append(weight_left * counts / (2 * pairs))
    ends = np.array([np.zeros(inputs, dtype=bool), np.ones(inputs, dtype=bool)])
    mask = np.vstack([ends, *masks])
    return Coalitions(mask, np.concatenate([[0.0, 0.0], *weights]), exact=False)


def perturbed_rows(x: Sequence[Any], background: Sequence[np.ndarray], mask: np.ndarray) -> list[np.ndarray]:
    """The rows whose predictions give each coalition's value, column by column (one array per
    input): for coalition c and background row b, row c * len(background) + b takes x's value on
    the coalition's inputs and b's elsewhere. Values are copied whole (categories stay categories)."""
    rows = len(background[0]) if background else 0
    columns = []
    for j, (value, column) in enumerate(zip(x, background, strict=True)):
        column = np.asarray(column)
        picked = np.where(mask[:, j, None], value, column[None, :])
        columns.append(picked.reshape(len(mask) * rows))
    return columns


def coalition_values(predictions: np.ndarray, background_rows: int) -> np.ndarray:
    """Each coalition's value (n, K): the mean prediction over its background rows, from the
    predictions of `perturbed_rows` (n * background_rows rows, K outputs)."""
    answers = np.asarray(predictions, dtype=float)
    answers = answers.reshape(len(answers), -1)
    return answers.reshape(-1, background_rows, answers.shape[1]).mean(axis=1)


def attributions(
    values: np.ndarray, mask: np.ndarray, weights: np.ndarray, prediction: np.ndarray, expected: np.ndarray
) -> np.ndarray:
    """Each input's attribution per output (K, M): the kernel-weighted least squares fit of the
    coalitions' values (n, K) under sum(phi) = prediction - expected, solved exactly."""
    values = np.asarray(values, dtype=float).reshape(len(mask), -1)
    prediction = np.atleast_1d(np.asarray(prediction, dtype=float))
    expected = np.atleast_1d(np.asarray(expected, dtype=float))
    gap = prediction - expected
    inputs = mask.shape[1]
    if inputs == 1:
        return gap[:, None]
    used = weights > 0
    present = mask[used].astype(float)
    # phi_M = gap - sum(phi_1..phi_M-1): one unknown less, the constraint exact
    design = present[:, :-1] - present[:, -1:]
    target = (values[used] - expected) - present[:, -1:] * gap[None, :]
    scale = np.sqrt(weights[used])[:, None]
    head, *_ = np.linalg.lstsq(design * scale, target * scale, rcond=None)
    last = gap - head.sum(axis=0)
    return np.vstack([head, last[None, :]]).T
