"""The two-sample Kolmogorov-Smirnov test of the wide drift engine, as scipy computes it, for large columns.

``ks_p_value`` gives scipy's two-sided ``ks_2samp`` p-value (what Evidently's ``ks`` returns): up to
``KS_EXACT_MAX_ROWS`` rows a side it calls ``ks_2samp``; above, the statistic comes from ``ks_distance`` (bin
counts, only the bins that can hold the maximum sorted and searched: bit for bit ``ks_2samp``'s statistic) and the
p-value from ``kstwo``'s survival function, whose slow exact branch (scipy's ``smirnov`` sum) is taken in log space
with numpy (``smirnov_sf``; agrees with scipy to about 1e-13).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# scipy's ks_2samp switches from its exact to its asymptotic p-value above this many rows per side.
KS_EXACT_MAX_ROWS = 10_000


def ks_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """scipy's two-sided ``ks_2samp`` p-value (what Evidently's ``ks`` returns) for two samples without NaN (sorted
    or not)."""
    n1, n2 = len(reference), len(current)
    if max(n1, n2) <= KS_EXACT_MAX_ROWS:
        from scipy.stats import ks_2samp

        return float(ks_2samp(reference, current)[1])
    return ks_asymptotic_p_value(ks_distance(reference, current), n1, n2)


def ks_asymptotic_p_value(d: float, n1: int, n2: int) -> float:
    """``ks_2samp``'s asymptotic p-value: ``kstwo.sf(d, round(n1 n2 / (n1 + n2)))``, clipped to [0, 1].

    Where scipy's ``kstwo.sf`` takes ``2 * scipy.special.smirnov(n, d)`` (p below about 0.02, n above 140) and n is
    large, the same sum is taken here in log space with numpy (``smirnov_sf``): scipy sums its n terms one at a
    time in double-double arithmetic, 0.1-0.3 s a column at n = 100,000; this agrees with it to about 1e-11.
    """
    import numpy as np

    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = float(np.round(m * n / (m + n)))
    nxsquared = en * d * d
    if SMIRNOV_FAST_MIN_N <= en <= SMIRNOV_EXACT_MAX_N and 1.0 < en * d < en - 1 and d < 0.5 and 2.2 <= nxsquared < 370:
        return float(np.clip(np.clip(2 * smirnov_sf(int(en), d), 0.0, 1.0), 0, 1))
    from scipy.stats import distributions

    return float(np.clip(distributions.kstwo.sf(d, en), 0, 1))


# Below this n, scipy's own smirnov is fast enough (its cost grows with n); above the second, scipy approximates.
SMIRNOV_FAST_MIN_N = 2_000
SMIRNOV_EXACT_MAX_N = 1_000_000


def smirnov_sf(n: int, x: float) -> float:
    """``scipy.special.smirnov(n, x)``: P(D+_n >= x) = x * sum_v C(n, v) (x + v/n)^(v-1) (1 - x - v/n)^(n-v),
    over v = 0 .. the largest v with x + v/n < 1, as scipy sums it (same terms), each term in log space.

    With w = n - v, log C(n, v) is written as n H(v/n) plus Stirling's remainders, and folded into the other two
    logarithms, so no term involves the large, nearly cancelling log-gammas: each log-term is exact to about 1e-12.
    """

    import numpy as np

    nx = n * x
    last = n - math.floor(nx) - 1  # the last v with x + v/n < 1
    v = np.arange(1, last + 1, dtype=np.float64)
    w = n - v
    log_terms = v * np.log1p(nx / v)
    log_terms += w * np.log1p(-nx / w)
    log_terms -= np.log(x + v / n)
    log_terms -= 0.5 * np.log((2 * math.pi / n) * v * w)
    log_terms += _stirling_remainder(np.array([float(n)]))[0]
    log_terms -= _stirling_remainder(v)
    log_terms -= _stirling_remainder(w)
    first = n * math.log1p(-x) - math.log(x)  # the v = 0 term, (1 - x)^n / x
    top = max(first, float(log_terms.max())) if len(log_terms) else first
    total = math.exp(first - top) + float(np.exp(log_terms - top).sum())
    return math.exp(math.log(x) + top + math.log(total))


def _stirling_remainder(k: np.ndarray) -> np.ndarray:
    """lgamma(k + 1) - (k ln k - k + ln sqrt(2 pi k)) for k >= 1."""

    import numpy as np
    from scipy.special import gammaln

    out = np.empty_like(k)
    small = k < 20
    few = k[small]
    out[small] = gammaln(few + 1) - (few * np.log(few) - few + 0.5 * np.log(2 * math.pi * few))
    inverse = 1.0 / k[~small]
    square = inverse * inverse
    # Stirling's series to k^-9: the next term is below 1e-15 for k >= 20.
    out[~small] = inverse * (1 / 12 - square * (1 / 360 - square * (1 / 1260 - square * (1 / 1680 - square / 1188))))
    return out


# Bins of the first pass of ks_distance: a bin's counts bound the ECDF difference inside it.
KS_BINS = 16_384


def ks_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """The two-sample KS statistic D = max |F_ref(x) - F_cur(x)| over the sample values, exactly as ``ks_2samp``
    computes it (both ECDFs counted with ``side='right'``, the difference ``k1/n1 - k2/n2`` in float64), without
    sorting the samples.

    Integers over a short range are counted per value. Otherwise the values go into ``KS_BINS`` bins over the pooled
    0.1-99.9% range (tails in the end bins; a monotone map, so equal values share a bin): the counts give the
    exact difference after each bin's largest value, and bound it inside each bin. Only the bins whose bound beats
    the largest exact difference so far are sorted and searched value by value.
    """
    import numpy as np

    n1, n2 = len(reference), len(current)
    dtype = np.result_type(reference, current)
    if dtype.kind not in "fiu":
        return _ks_distance_sorted(np.sort(reference), np.sort(current))
    a, b = reference.astype(dtype, copy=False), current.astype(dtype, copy=False)
    low, high = min(a.min(), b.min()), max(a.max(), b.max())
    if dtype.kind in "iu" and int(high) - int(low) < 4 * (n1 + n2):
        span = int(high) - int(low) + 1

        def shifted(values: np.ndarray) -> np.ndarray:
            if dtype.itemsize == 8:  # values - low is in [0, span): no overflow
                return (values - low).astype(np.intp, copy=False)
            return values.astype(np.intp) - int(low)

        ca, cb = np.bincount(shifted(a), minlength=span), np.bincount(shifted(b), minlength=span)
        return _distance(np.cumsum(ca) / n1 - np.cumsum(cb) / n2)
    af, bf = a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
    pooled = np.sort(np.concatenate([af[:: max(1, n1 // 2048)], bf[:: max(1, n2 // 2048)]]))
    start, stop = float(pooled[int(0.001 * (len(pooled) - 1))]), float(pooled[int(0.999 * (len(pooled) - 1))])
    if not stop > start:
        start, stop = float(low), float(high)
    scale = KS_BINS / (stop - start) if stop > start else float("inf")
    if not (np.isfinite(start) and np.isfinite(stop) and np.isfinite(scale)):
        return _ks_distance_sorted(np.sort(a), np.sort(b))

    def bin_of(values: np.ndarray) -> np.ndarray:
        position = values - start
        position *= scale
        np.clip(position, 0, KS_BINS - 1, out=position)
        return position.astype(np.intp)

    bins_a, bins_b = bin_of(af), bin_of(bf)
    ca, cb = np.bincount(bins_a, minlength=KS_BINS), np.bincount(bins_b, minlength=KS_BINS)
    upto_a, upto_b = np.cumsum(ca), np.cumsum(cb)
    filled = (ca + cb) > 0
    after = (upto_a / n1 - upto_b / n2)[filled]  # the difference at each bin's largest value
    high_diff, low_diff = float(after.max()), float(after.min())
    so_far = max(high_diff, -low_diff)
    # Inside a bin the difference lies between these (float rounding is monotone, so they bound it exactly).
    upper = upto_a / n1 - (upto_b - cb) / n2
    lower = (upto_a - ca) / n1 - upto_b / n2
    open_bins = filled & (np.maximum(upper, -lower) > so_far)
    if open_bins.any():
        values_a, values_b = np.sort(a[open_bins[bins_a]]), np.sort(b[open_bins[bins_b]])
        points = np.concatenate([values_a, values_b])
        point_bins = np.concatenate(
            [bin_of(values_a.astype(np.float64, copy=False)), bin_of(values_b.astype(np.float64, copy=False))]
        )
        # Values of opened bins before each point's bin: their counts replace the bins' own.
        offset_a = upto_a - np.cumsum(np.where(open_bins, ca, 0))
        offset_b = upto_b - np.cumsum(np.where(open_bins, cb, 0))
        k1 = offset_a[point_bins] + np.searchsorted(values_a, points, "right")
        k2 = offset_b[point_bins] + np.searchsorted(values_b, points, "right")
        inside = k1 / n1 - k2 / n2
        high_diff, low_diff = max(high_diff, float(inside.max())), min(low_diff, float(inside.min()))
    return max(high_diff, min(max(-low_diff, 0.0), 1.0))


def _distance(differences: np.ndarray) -> float:
    high, low = float(differences.max()), float(differences.min())
    return max(high, min(max(-low, 0.0), 1.0))


def _ks_distance_sorted(reference: np.ndarray, current: np.ndarray) -> float:
    """The KS statistic from the two sorted samples."""
    import numpy as np

    n1 = len(reference)
    n2 = len(current)
    # The empirical CDFs differ most at a sample value; after the last of equal values, both CDFs count the
    # ties, which is where ks_2samp's searches with side='right' evaluate them.
    ref_last = _last_of_runs(reference)
    cur_last = _last_of_runs(current)
    below_cur = np.searchsorted(reference, current, "right")  # reference values <= each current value
    below_ref = np.searchsorted(current, reference[ref_last], "right")
    at_ref = (np.flatnonzero(ref_last) + 1) / n1 - below_ref / n2
    at_cur = below_cur[cur_last] / n1 - (np.flatnonzero(cur_last) + 1) / n2
    high = max(float(at_ref.max()), float(at_cur.max()))
    low = min(float(at_ref.min()), float(at_cur.min()))
    return max(high, min(max(-low, 0.0), 1.0))


def _last_of_runs(values: np.ndarray) -> np.ndarray:
    import numpy as np

    last = np.empty(len(values), dtype=bool)
    last[-1] = True
    np.not_equal(values[1:], values[:-1], out=last[:-1])
    return last
