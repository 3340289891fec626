"""Partial aggregates: every metric is states that merge, so a window is computed per file and merged.

An aggregate turns rows into *contributions* (state columns with a merge operation: sum, min or
max, optionally split by an extra key such as a histogram bin), which are reduced per group. The
reduced states of several files merge by the same reductions, and `finalize` turns merged states
into the metric's value per group. Everything runs on whole columns (pyarrow group_by), never a
Python loop per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Merge = str  # "sum" | "min" | "max"


@dataclass
class Contributions:
    """Per-row state columns (name -> (values, merge)), and extra key columns (e.g. a bin index)."""

    states: dict[str, tuple[pa.Array, Merge]]
    extra_keys: dict[str, pa.Array] = field(default_factory=dict)


class Aggregate:
    """Base of every selectable function. Subclasses define contributions() and finalize()."""

    #: the value needs ground truth joined to each row
    needs_ground_truth = False

    def contributions(self, table: pa.Table) -> Contributions:
        """The state columns these rows contribute (see Contributions)."""
        raise NotImplementedError

    def finalize(self, states: pa.Table, keys: list[str]) -> pa.Array:
        """One value per row of `states` (one row per group, or per group and extra key)."""
        raise NotImplementedError

    # -- the machinery shared by all -----------------------------------------------------------

    def partial(self, table: pa.Table, keys: list[str]) -> pa.Table:
        """States of these rows, reduced per group (and extra key)."""
        found = self.contributions(table)
        columns = {k: table.column(k) for k in keys}
        columns.update(found.extra_keys)
        columns.update({name: values for name, (values, _) in found.states.items()})
        work = pa.table(columns) if columns else pa.table({"__n": pa.nulls(table.num_rows)})
        return _reduce(work, keys + list(found.extra_keys), {n: op for n, (_, op) in found.states.items()})

    def merge(self, partials: list[pa.Table], keys: list[str]) -> pa.Table:
        """Several partials (of files) as one, by the same reductions."""
        table = pa.concat_tables(partials, promote_options="default")
        state_names = [n for n in table.column_names if n.startswith("s_")]
        extra = [n for n in table.column_names if n not in keys and n not in state_names]
        return _reduce(table, keys + extra, {n: n.rsplit("__", 1)[1] for n in state_names})


def _reduce(table: pa.Table, keys: list[str], ops: dict[str, Merge]) -> pa.Table:
    """group_by keys, reducing each state by its operation; state names carry their operation."""
    if not ops:
        return table.group_by(keys).aggregate([]) if keys else pa.table({})
    named = {}
    for name, op in ops.items():
        final = name if name.startswith("s_") else f"s_{name}__{op}"
        named[final] = (name, op)
    reduced = table.group_by(keys, use_threads=False).aggregate(
        [(source, op) for source, op in named.values()]
    )
    renames = {f"{source}_{op}": final for final, (source, op) in named.items()}
    return reduced.rename_columns([renames.get(c, c) for c in reduced.column_names])


def state(states: pa.Table, name: str, op: Merge = "sum") -> np.ndarray:
    """A merged state column as float64: a sum over no rows is 0, a min or max over none is NaN."""
    column = states.column(f"s_{name}__{op}")
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).astype(float)
    return np.nan_to_num(values, nan=0.0) if op == "sum" else values


def ones(table: pa.Table) -> pa.Array:
    """A 1 per row (int64): what a row count sums."""
    return pa.array(np.ones(table.num_rows, dtype=np.int64))


def indicator(mask: pa.Array | np.ndarray) -> pa.Array:
    """1 where mask is true, 0 elsewhere (nulls count as false)."""
    if isinstance(mask, np.ndarray):
        return pa.array(mask.astype(np.int64))
    return pc.cast(pc.fill_null(mask, False), pa.int64())


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (an empty group has no value)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def as_values(values: np.ndarray) -> pa.Array:
    """Float results with NaN as null (JSON has no NaN)."""
    return pa.array(values, type=pa.float64(), from_pandas=True)


def numbers(table: pa.Table, name: str) -> pa.Array:
    """A column as float64 (booleans as 0/1); integers past 2**53 are rounded to the nearest float,
    as any float64 arithmetic over them would."""
    column = (
        table.column(name).combine_chunks()
        if isinstance(table.column(name), pa.ChunkedArray)
        else table.column(name)
    )
    if pa.types.is_boolean(column.type):
        return pc.cast(column, pa.float64())
    if pa.types.is_timestamp(column.type):
        return pc.divide(pc.cast(pc.cast(column, pa.int64()), pa.float64(), safe=False), 1e6)
    return pc.cast(column, pa.float64(), safe=False)
