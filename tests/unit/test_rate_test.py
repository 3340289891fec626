"""rateTest's p-value (sagewatch.metrics.functions.upper_tail), computed without scipy, against
scipy: the binomial tail (scipy.stats.binom.sf) over a grid of hits, rows up to 10^6 and shares; the
beta-binomial tail (a share seen in share_rows rows) against every term of scipy.stats.betabinom's
pmf summed (its sf loses up to 1e-4 relative past 1e-7, subtracting from 1), and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import betabinom, binom

from sagewatch.metrics.functions import MAX_SHARE_ROWS, upper_tail

ROWS = (1, 2, 7, 50, 300, 1000, 10_000, 1_000_000)
SHARES = (0.0, 1e-6, 0.001, 0.01, 0.02, 0.1, 0.5, 0.9, 0.999, 1.0)


def hits_for(rows: int, share: float) -> list[int]:
    """Hits around the mean, far above it, and at the edges."""
    mean = rows * share
    found = {0, 1, 2, rows // 2, rows, rows + 1, int(mean) - 1, int(mean), int(mean) + 1}
    found |= {int(mean * 1.5) + 1, int(mean * 3) + 5}
    return sorted(k for k in found if k >= 0)


@pytest.mark.parametrize("rows", ROWS)
def test_the_binomial_tail_is_scipys(rows: int) -> None:
    # GIVEN every share and hits below, at and far above the mean
    for share in SHARES:
        for hits in hits_for(rows, share):
            # WHEN the tail P(X >= hits) is computed
            ours = upper_tail(hits, rows, share)
            theirs = float(binom.sf(hits - 1, rows, share))

            # THEN it is scipy's to 1e-8 relative (lgamma of 10^6 is 1.3e7, known to 3e-9), absolute
            # below 1e-300
            assert ours == pytest.approx(theirs, rel=1e-8, abs=1e-300), (hits, rows, share)


@pytest.mark.parametrize("share_rows", [100, 300, 10_000])
def test_the_beta_binomial_tail_is_scipys_pmf_summed(share_rows: int) -> None:
    # GIVEN a share seen in share_rows rows, up to 200,000 rows, hits below, at and far above the mean
    for rows in (1, 7, 300, 10_000, 200_000):
        for share in (0.0, 0.01, 0.02, 0.1, 0.5, 0.99):
            a, b = share * share_rows + 1, share_rows - share * share_rows + 1
            terms = betabinom.pmf(np.arange(rows + 1), rows, a, b)
            for hits in hits_for(rows, a / (a + b)):
                theirs = math.fsum(terms[hits:])
                if theirs < 1e-250:
                    continue
                # THEN ours is scipy's pmf summed over X >= hits
                ours = upper_tail(hits, rows, share, share_rows)
                assert ours == pytest.approx(theirs, rel=1e-8), (hits, rows, share, share_rows)


def test_the_beta_binomial_tail_matches_closed_forms_at_a_million_rows() -> None:
    # GIVEN a share of 0 seen in m rows: the share is Beta(1, m + 1), and
    # P(X = 0) = B(1, n + m + 1) / B(1, m + 1) = (m + 1) / (n + m + 1); P(X = n) = B(n + 1, m + 1) / B(1, m + 1)
    for rows, seen in ((1_000_000, 100), (1_000_000, 10_000), (10, 300)):
        none = (seen + 1) / (rows + seen + 1)
        log_all = math.lgamma(rows + 1) + math.lgamma(seen + 1) - math.lgamma(rows + seen + 2)
        log_all += math.log(seen + 1)

        # THEN P(X >= 1) = 1 - P(X = 0), and P(X >= n) = P(X = n)
        assert upper_tail(1, rows, 0.0, seen) == pytest.approx(1 - none, rel=1e-10)
        assert upper_tail(rows, rows, 0.0, seen) == pytest.approx(math.exp(log_all), rel=1e-8)


def test_a_share_seen_in_few_rows_makes_the_same_count_less_surprising() -> None:
    # GIVEN 33 of 300 rows above a cutoff that 1% of the reference rows were above
    # THEN the p-value grows as the reference shrinks (the share is less certain), and a share taken
    # as exact gives the smallest
    exact = upper_tail(33, 300, 0.01)
    seen = [upper_tail(33, 300, 0.01, rows) for rows in (10_000, 1000, 300, 100)]
    assert exact < seen[0] < seen[1] < seen[2] < seen[3]
    assert seen[2] < 1e-4 < seen[3]


def test_at_the_largest_share_rows_the_tail_is_the_binomials() -> None:
    # GIVEN a share seen in MAX_SHARE_ROWS rows: all but known, so the beta-binomial is the binomial
    for hits, rows in ((5, 300), (1, 2), (40, 1000)):
        ours = upper_tail(hits, rows, 0.01, MAX_SHARE_ROWS)
        # THEN it agrees with scipy's binomial tail to the share's own uncertainty (n / share_rows)
        assert ours == pytest.approx(binom.sf(hits - 1, rows, 0.01), rel=1e-3), (hits, rows)
