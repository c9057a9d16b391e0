"""The Deliberative Reason Index (Niemeyer, Veri, Dryzek & Bächtiger 2023, "How Deliberation
Happens: Enabling Deliberative Reason", American Political Science Review).

For one group at one wave, every pair of participants i, j gives two Spearman correlations:
r_C between their ratings of the considerations (statements about the issue) and r_P between
their preference orderings of the policy options. Deliberative reason means the two agree:
people who see the issue alike want the same things, people who disagree disagree for shared
reasons. The pair's distance from the 45-degree line of the (r_C, r_P) plane is
d_ij = |r_C - r_P| / sqrt(2), and

    DRI = (lambda - 2 mean(d)) / lambda,   lambda = sqrt(2) / 2,

which equals 1 - 2 mean|r_C - r_P|: 1 when every pair lies on the line, 0 when the pairs are
half a correlation off it on average, -3 at the (never seen) extreme. A participant's
individual DRI is the same formula over the pairs that include them. A pair where either
correlation is undefined (one of the two gave the same value to every item) is left out and
counted.

Vectorised: every participant's answers are ranked once (ties averaged, as Spearman's rho does),
centred and scaled to unit length, so the whole matrix of pairwise correlations is one matrix
product, the same arithmetic as ``np.corrcoef`` of the ranks. It is done in blocks of rows so a
whole arm of thousands of participants never holds an n x n matrix. Past MAX_PAIRS pairs (an arm
of about 5,000 people, 0.4 s a wave) the work grows with the square of the arm: the DRI and the
individual DRIs are then estimated from a fixed-seed random sample of SAMPLE_PAIRS pairs (the
same data gives the same estimate; its standard error is about 0.001), while ``pairs`` and
``pairs_left_out`` stay exact counts.
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

LAMBDA = np.sqrt(2) / 2
BLOCK_ROWS = 512
MAX_PAIRS = 12_500_000
SAMPLE_PAIRS = 500_000
SAMPLE_CHUNK = 200_000
# A correlation computed from unit vectors of exactly equal ranks can come out 1 + 2e-16.
_CLIP = 1.0


def rank_rows(values: np.ndarray) -> np.ndarray:
    """Each row ranked across its columns (ties averaged); rows with a missing value are NaN."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    ranks = sps.rankdata(values, axis=1, method="average")
    ranks[np.isnan(values).any(axis=1)] = np.nan
    return ranks


def unit_rows(ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows centred and scaled to length 1, which rows have a defined correlation): a
    constant row has none; a row of ranks with NaN is no usable row either."""
    centred = ranks - ranks.mean(axis=1, keepdims=True)
    norm = np.sqrt((centred**2).sum(axis=1))
    valid = np.isfinite(norm) & (norm > 1e-12 * max(1, ranks.shape[1]))
    out = np.zeros_like(centred)
    out[valid] = centred[valid] / norm[valid, None]
    return out, valid


@dataclass(frozen=True)
class GroupDRI:
    """DRI of one group at one wave. ``pairs``: pairs counted; ``pairs_left_out``: pairs with an
    undefined correlation; ``individual[i]``: participant i's DRI over the counted pairs that
    include them (NaN when none), in the input's order."""

    n: int
    pairs: int
    pairs_left_out: int
    dri: float
    individual: tuple[float, ...]
    sampled: bool = False  # estimated from a random sample of SAMPLE_PAIRS pairs


def from_gaps(gap_sum: float, count: int) -> float:
    """DRI from the sum of |r_C - r_P| over ``count`` pairs, by the paper's formula."""
    if count == 0:
        return float("nan")
    mean_d = gap_sum / count / np.sqrt(2)
    return float((LAMBDA - 2 * mean_d) / LAMBDA)


def group_dri(
    considerations: np.ndarray,
    preferences: np.ndarray,
    *,
    block_rows: int = BLOCK_ROWS,
    max_pairs: int = MAX_PAIRS,
    seed: int = 0,
) -> GroupDRI:
    """DRI of the participants (rows) of one group: ``considerations`` n x statements (any
    scale: ratings), ``preferences`` n x options (ranks or ratings: either is ranked per row,
    so only each participant's order counts). A row with a missing value must not be given:
    the caller chooses who takes part. Over more than ``max_pairs`` counted pairs, estimated
    from a sample of them (see the module's doc)."""
    zc, valid_c = unit_rows(rank_rows(considerations))
    zp, valid_p = unit_rows(rank_rows(preferences))
    n = zc.shape[0]
    valid = valid_c & valid_p
    members = int(valid.sum())
    if members * (members - 1) // 2 > max_pairs:
        return sampled_dri(zc, zp, valid, size=min(max_pairs, SAMPLE_PAIRS), seed=seed)
    gap_sum = np.zeros(n)
    counted = np.zeros(n, dtype=np.int64)
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        r_c = np.clip(zc[start:stop] @ zc.T, -_CLIP, _CLIP)
        r_p = np.clip(zp[start:stop] @ zp.T, -_CLIP, _CLIP)
        use = valid[start:stop, None] & valid[None, :]
        use[np.arange(stop - start), np.arange(start, stop)] = False  # not a pair with oneself
        gaps = np.where(use, np.abs(r_c - r_p), 0.0)
        gap_sum[start:stop] = gaps.sum(axis=1)
        counted[start:stop] = use.sum(axis=1)
    total_pairs = n * (n - 1) // 2
    pairs = int(counted.sum() // 2)  # each pair is counted from both of its ends
    with np.errstate(invalid="ignore", divide="ignore"):
        individual = 1 - 2 * gap_sum / counted  # = (lambda - 2 mean d) / lambda, per person
    individual[counted == 0] = np.nan
    return GroupDRI(
        n=int(n),
        pairs=pairs,
        pairs_left_out=total_pairs - pairs,
        dri=from_gaps(float(gap_sum.sum() / 2), pairs),
        individual=tuple(float(v) for v in individual),
    )


def individual_in_groups(
    considerations: np.ndarray,
    preferences: np.ndarray,
    groups: np.ndarray,
    *,
    max_batch: int = 64,
) -> np.ndarray:
    """Each participant's individual DRI within their group (``groups``: a label per row), as
    ``group_dri(...).individual`` gives it group by group, but for all groups of up to
    ``max_batch`` members at once: the groups are laid side by side in a padded array, so a poll
    of thousands of small groups costs a few array operations, not thousands of calls. Larger
    groups go one at a time."""
    zc, valid_c = unit_rows(rank_rows(considerations))
    zp, valid_p = unit_rows(rank_rows(preferences))
    valid = valid_c & valid_p
    out = np.full(len(groups), np.nan)
    labels, index, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    small = sizes[index] <= max_batch
    for label in labels[sizes > max_batch]:
        rows = groups == label
        out[rows] = group_dri(considerations[rows], preferences[rows]).individual
    if not small.any():
        return out
    rows = np.flatnonzero(small)
    order = rows[np.argsort(index[rows], kind="stable")]
    group_of = index[order]
    _, first, counts = np.unique(group_of, return_index=True, return_counts=True)
    slot = np.arange(order.size) - np.repeat(first, counts)  # place within the group
    width = int(counts.max())
    g = np.repeat(np.arange(counts.size), counts)
    padded_c = np.zeros((counts.size, width, zc.shape[1]))
    padded_p = np.zeros((counts.size, width, zp.shape[1]))
    present = np.zeros((counts.size, width), dtype=bool)
    padded_c[g, slot], padded_p[g, slot], present[g, slot] = zc[order], zp[order], valid[order]
    r_c = np.clip(np.einsum("gik,gjk->gij", padded_c, padded_c), -_CLIP, _CLIP)
    r_p = np.clip(np.einsum("gik,gjk->gij", padded_p, padded_p), -_CLIP, _CLIP)
    use = present[:, :, None] & present[:, None, :] & ~np.eye(width, dtype=bool)[None]
    gap_sum = np.where(use, np.abs(r_c - r_p), 0.0).sum(axis=2)
    counted = use.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        individual = np.where(counted > 0, 1 - 2 * gap_sum / counted, np.nan)
    out[order] = individual[g, slot]
    return out


def sampled_dri(
    zc: np.ndarray, zp: np.ndarray, valid: np.ndarray, *, size: int, seed: int
) -> GroupDRI:
    """``group_dri`` estimated from ``size`` pairs of the valid rows drawn at random
    (unit rows as ``unit_rows`` gives them); a participant's individual DRI is over the drawn
    pairs that include them."""
    n = zc.shape[0]
    members = np.flatnonzero(valid)
    m = members.size
    total = m * (m - 1) // 2
    # Drawn with replacement: as unbiased as without, and no draw over billions of pairs.
    flat = np.random.default_rng(seed).integers(0, total, size=size)
    gap_sum = np.zeros(n)
    counted = np.zeros(n, dtype=np.int64)
    for start in range(0, size, SAMPLE_CHUNK):
        i, j = triangle_pair(flat[start : start + SAMPLE_CHUNK], m)
        a, b = members[i], members[j]
        r_c = np.clip(np.einsum("ij,ij->i", zc[a], zc[b]), -_CLIP, _CLIP)
        r_p = np.clip(np.einsum("ij,ij->i", zp[a], zp[b]), -_CLIP, _CLIP)
        gaps = np.abs(r_c - r_p)
        gap_sum += np.bincount(a, weights=gaps, minlength=n) + np.bincount(
            b, weights=gaps, minlength=n
        )
        counted += np.bincount(a, minlength=n) + np.bincount(b, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        individual = 1 - 2 * gap_sum / counted
    individual[counted == 0] = np.nan
    return GroupDRI(
        n=int(n),
        pairs=int(total),
        pairs_left_out=n * (n - 1) // 2 - int(total),
        dri=from_gaps(float(gap_sum.sum() / 2), size),
        individual=tuple(float(v) for v in individual),
        sampled=True,
    )


def pair_points(
    considerations: np.ndarray,
    preferences: np.ndarray,
    *,
    limit: int,
    seed: int = 0,
) -> tuple[int, np.ndarray]:
    """(number of counted pairs, their (r_C, r_P) points as a k x 2 array): every counted pair
    when there are at most ``limit``, else a random sample of ``limit`` pairs drawn with a fixed
    seed (the same data gives the same points), for the consistency scatter."""
    zc, valid_c = unit_rows(rank_rows(considerations))
    zp, valid_p = unit_rows(rank_rows(preferences))
    members = np.flatnonzero(valid_c & valid_p)
    m = members.size
    total = m * (m - 1) // 2
    if total == 0:
        return 0, np.zeros((0, 2))
    if total <= limit:
        i, j = np.triu_indices(m, k=1)
    else:
        rng = np.random.default_rng(seed)
        # Distinct unordered pairs, drawn by index into the upper triangle (no n x n matrix).
        flat = np.sort(rng.choice(total, size=limit, replace=False))
        i, j = triangle_pair(flat, m)
    a, b = members[i], members[j]
    r_c = np.clip((zc[a] * zc[b]).sum(axis=1), -_CLIP, _CLIP)
    r_p = np.clip((zp[a] * zp[b]).sum(axis=1), -_CLIP, _CLIP)
    return int(total), np.column_stack([r_c, r_p])


def triangle_pair(flat: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column (i < j) of the k-th pair of the upper triangle of an m x m matrix, in the
    order of ``np.triu_indices(m, 1)``."""
    flat = np.asarray(flat, dtype=np.int64)
    # Row i starts at s(i) = i (2m - i - 1) / 2; solve s(i) <= k for the largest i.
    root = np.sqrt((2 * m - 1) ** 2 - 8 * flat.astype(np.float64))
    i = np.floor(((2 * m - 1) - root) / 2).astype(np.int64)
    start = i * (2 * m - i - 1) // 2
    i = np.where(start > flat, i - 1, i)  # float rounding, either way
    start = i * (2 * m - i - 1) // 2
    nxt = (i + 1) * (2 * m - i - 2) // 2
    i = np.where(flat >= nxt, i + 1, i)
    start = i * (2 * m - i - 1) // 2
    return i, flat - start + i + 1


@dataclass(frozen=True)
class DRIChange:
    """The change of individual DRI from T1 to T2 over participants with both, tested with a
    paired t-test (scipy.stats.ttest_rel): mean_diff = mean(T2 - T1)."""

    n: int
    mean_t1: float
    mean_t2: float
    mean_diff: float
    ci_low: float
    ci_high: float
    t: float
    df: float
    p: float


def individual_change(t1: np.ndarray, t2: np.ndarray, *, confidence: float = 0.95) -> DRIChange:
    """Paired t-test of individual DRI at T2 against T1 (participants with both)."""
    t1, t2 = np.asarray(t1, dtype=np.float64), np.asarray(t2, dtype=np.float64)
    both = np.isfinite(t1) & np.isfinite(t2)
    x, y = t1[both], t2[both]
    n = int(x.size)
    nan = float("nan")
    if n == 0:
        return DRIChange(0, nan, nan, nan, nan, nan, nan, nan, nan)
    mean_t1, mean_t2 = float(x.mean()), float(y.mean())
    differences = y - x
    # No spread: equal differences built by different sums can differ in the last bit (0.3 - 0.1
    # and 0.4 - 0.2), which would give a t of 1e16 instead of no test.
    if n < 2 or np.ptp(differences) <= 1e-12 * max(1.0, float(np.abs(differences).max())):
        # No spread of differences: the t statistic is undefined (scipy would warn).
        diff = mean_t2 - mean_t1
        return DRIChange(n, mean_t1, mean_t2, diff, nan, nan, nan, float(n - 1) or nan, nan)
    result = sps.ttest_rel(y, x)
    interval = result.confidence_interval(confidence)
    return DRIChange(
        n=n,
        mean_t1=mean_t1,
        mean_t2=mean_t2,
        mean_diff=float(np.mean(y - x)),
        ci_low=float(interval.low),
        ci_high=float(interval.high),
        t=float(result.statistic),
        df=float(result.df),
        p=float(result.pvalue),
    )
