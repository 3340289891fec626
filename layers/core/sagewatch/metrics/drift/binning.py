"""Fit once on the base, count per window: the bins drift statistics compare.

- Numeric properties: the base's quantile edges (num_bins bins, open at both ends; repeated
  quantiles collapse, so a property with few distinct values gets fewer bins).
- Categorical properties (and text, booleans): one bin per category of the base; a target's new
  categories get bins of their own, with base count 0 (the union of categories).
- Missing values (null, NaN) are a bin of their own, so they count as drift and never crash.
Counts are computed with array kernels; a window's counts are sums, so they merge across files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EPSILON = 1e-4
KS_BINS = 1000


@dataclass(frozen=True)
class Profile:
    """A property's bins, fitted on the base: interior edges (numeric) or categories."""

    numeric: bool
    edges: np.ndarray | None = None
    categories: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Bins excluding the missing-value bin (the last index)."""
        return len(self.edges) + 1 if self.numeric else len(self.categories)


def is_numeric(values: pa.Array) -> bool:
    """Whether the values are integers or floats (binned by quantiles; other values by category)."""
    return pa.types.is_integer(values.type) or pa.types.is_floating(values.type)


def fit(values: pa.Array, num_bins: int, categorical: bool = False) -> Profile:
    """The bins of one property of the base."""
    if is_numeric(values) and not categorical:
        data = _floats(values)
        data = data[~np.isnan(data)]
        if data.size == 0:
            return Profile(True, np.array([]))
        quantiles = np.quantile(data, np.linspace(0, 1, num_bins + 1)[1:-1])
        return Profile(True, np.unique(quantiles))
    text = pc.cast(values, pa.string()) if not pa.types.is_string(values.type) else values
    categories = pc.unique(text.drop_null()).to_pylist()
    return Profile(False, categories=tuple(sorted(categories)))


def bin_index(profile: Profile, values: pa.Array) -> tuple[np.ndarray, list[str]]:
    """Each value's bin (missing values: the bin after the last), and categories new to the base.

    New categories get bins after the missing-value bin, in the order returned.
    """
    if profile.numeric:
        data = _floats(values)
        index = np.searchsorted(profile.edges, data, side="right")
        return np.where(np.isnan(data), profile.size, index), []
    text = pc.cast(values, pa.string()) if not pa.types.is_string(values.type) else values
    known = pa.array(list(profile.categories), pa.string())
    index = pc.index_in(text, value_set=known).to_numpy(zero_copy_only=False)
    index = np.where(np.isnan(index.astype(float)), -1, index).astype(np.int64)
    missing = text.is_null().to_numpy(zero_copy_only=False)
    new_mask = (index < 0) & ~missing
    new_values = pc.unique(text.filter(pa.array(new_mask))).to_pylist() if new_mask.any() else []
    if new_values:
        new_index = pc.index_in(text, value_set=pa.array(new_values, pa.string())).to_numpy(
            zero_copy_only=False
        )
        index = np.where(
            new_mask, profile.size + 1 + np.nan_to_num(new_index.astype(float)).astype(np.int64), index
        )
    return np.where(missing, profile.size, index), sorted(new_values, key=new_values.index)


def counts(profile: Profile, values: pa.Array) -> tuple[np.ndarray, list[str]]:
    """Counts per bin: the profile's bins, the missing bin, then new categories."""
    index, new = bin_index(profile, values)
    return np.bincount(index, minlength=profile.size + 1 + len(new)).astype(float), new


def aligned(base: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two count vectors over the same bins (the shorter padded with zeros), bins empty in both dropped."""
    size = max(len(base), len(target))
    base = np.pad(base, (0, size - len(base)))
    target = np.pad(target, (0, size - len(target)))
    used = (base > 0) | (target > 0)
    return base[used], target[used]


def proportions(values: np.ndarray) -> np.ndarray:
    """Counts as proportions, empty bins set to EPSILON (1e-4) and the whole renormalised to 1."""
    total = values.sum()
    share = values / total if total > 0 else np.full(len(values), 1 / max(len(values), 1))
    share = np.where(share == 0, EPSILON, share)
    return share / share.sum()


def _floats(values: pa.Array) -> np.ndarray:
    return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False).astype(float)
