"""The options as a set: orders by mean rating, Borda, Condorcet, single-peakedness and opinion
groups (PCA and k-means) with migration.

Part of :mod:`results.stats` (see its docstring for the input and output conventions).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats as sps
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from results.stats.base import NAN, ArrayLike, FloatArray, float_list, quiet, to_float

# Best-axis search for single-peakedness enumerates m!/2 orderings.
MAX_OPTIONS_FOR_AXIS_SEARCH = 8


@dataclass(frozen=True)
class Preferences:
    """Social-choice summary of complete rankings at one wave."""

    n_rankings: int
    borda: dict[str, float]
    pairwise: list[list[int]]
    condorcet_winner: str | None
    majority_cycle: bool
    cycles: list[list[str]]
    share_single_peaked_axis: float
    share_single_peaked_best: float
    best_axis: list[str] | None
    n_best_axes: int | None


@dataclass(frozen=True)
class OpinionGroups:
    """PCA and k-means opinion groups of the participant x option rating matrix at one wave."""

    n: int
    k: int | None
    silhouette: float
    silhouette_by_k: dict[str, float]
    sizes: list[int]
    centroids: list[list[float]]
    centroids_2d: list[list[float]]
    explained_variance_ratio: list[float]
    components: list[list[float]]


@dataclass(frozen=True)
class OptionSet:
    """The policy options considered together, at T1 and T2.  See :func:`option_set`."""

    option_keys: list[str]
    axis_order: list[str] | None
    n_ratings_t1: dict[str, int]
    n_ratings_t2: dict[str, int]
    mean_rating_t1: dict[str, float]
    mean_rating_t2: dict[str, float]
    order_t1: list[str]
    order_t2: list[str]
    kendall_tau: float
    kendall_p: float
    preferences_t1: Preferences
    preferences_t2: Preferences
    groups_t1: OpinionGroups
    groups_t2: OpinionGroups
    migration: list[list[int]]
    n_migration: int


def _unique_rankings(rankings: ArrayLike, m: int) -> tuple[np.ndarray, FloatArray]:
    """Distinct complete rankings as 0-based positions (U x m) and how many gave each.

    Rows with a NaN, or that are not a permutation of 1..m, are left out.
    """
    r = np.asarray(rankings, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] != m:
        raise ValueError(f"rankings must be a participant x {m} matrix, got shape {r.shape}")
    r = r[~np.isnan(r).any(axis=1)]
    r = r[np.all(np.sort(r, axis=1) == np.arange(1, m + 1), axis=1)]
    pos = (r - 1).astype(np.int64)
    if pos.shape[0] == 0:
        return np.zeros((0, m), dtype=np.int64), np.zeros(0)
    if m <= 15:  # m**m fits in int64: one integer per ranking sorts far faster than rows
        _, first, counts = np.unique(
            pos @ (m ** np.arange(m)), return_index=True, return_counts=True
        )
        return pos[first], counts.astype(np.float64)
    uniq, counts = np.unique(pos, axis=0, return_counts=True)
    return uniq, counts.astype(np.float64)


def single_peaked(order: np.ndarray, axis_pos: np.ndarray) -> npt.NDArray[np.bool_]:
    """Which rankings (options best first, U x m) are single-peaked on the axis.

    A strict ranking is single-peaked w.r.t. an axis iff for every k its k best options are
    contiguous on the axis: max - min of their axis positions equals k - 1.
    """
    ap = axis_pos[order]
    spread = np.maximum.accumulate(ap, axis=1) - np.minimum.accumulate(ap, axis=1)
    return np.all(spread == np.arange(order.shape[1]), axis=1)


@functools.lru_cache(maxsize=MAX_OPTIONS_FOR_AXIS_SEARCH)
def _axis_tables(m: int) -> tuple[FloatArray, np.ndarray, np.ndarray, np.ndarray]:
    """Lookup tables for the best-axis search with 2 <= m <= 8 options (cached per m).

    A ranking is single-peaked exactly on the axes built by putting its best option down
    and adding each next option at the left or the right end: 2^(m-1) directed axes, one
    direction of each of 2^(m-2) undirected axes if the second option always goes right.
    Under left/right pattern b the (k+1)-th best option lands at axis position
    ``slots[b, k]``.  A directed axis (option indices a_0..a_(m-1)) is coded by its first
    m - 1 entries, sum_s a_s m^s (the last entry follows), so that a code -> permutation
    table of m^(m-1) entries (2.1 M for m = 8) stays small.

    Returns ``place`` (pattern x rank weights m^slot, 0 for the last slot) so that
    ``order @ place.T`` gives the codes, ``index`` (code -> permutation number in
    lexicographic order), ``perms`` (all permutations) and ``reverse`` (permutation number
    of the reversed axis).
    """
    n_patterns = 2 ** (m - 2)
    bits = (np.arange(n_patterns)[:, None] >> np.arange(m - 2)) & 1
    left = np.concatenate([np.zeros((n_patterns, 1), dtype=np.int64), bits], axis=1)
    n_left = left.sum(axis=1)[:, None]
    slots = np.empty((n_patterns, m), dtype=np.int64)
    slots[:, :1] = n_left
    slots[:, 1:] = np.where(
        left == 1, n_left - np.cumsum(left, axis=1), n_left + np.cumsum(1 - left, axis=1)
    )
    place = np.where(slots < m - 1, float(m) ** slots, 0.0)
    perms = np.array(list(itertools.permutations(range(m))), dtype=np.int64)
    powers = m ** np.arange(m - 1, dtype=np.int64)
    index = np.zeros(m ** (m - 1), dtype=np.uint16)  # m! <= 40320 fits
    index[perms[:, :-1] @ powers] = np.arange(perms.shape[0])
    reverse = index[perms[:, :0:-1] @ powers].astype(np.int64)
    return place, index, perms, reverse


def _best_axis(order: np.ndarray, counts: FloatArray, m: int) -> tuple[float, np.ndarray, int]:
    """(best count, best axis as option indices, number of tied axes) over all m!/2 axes.

    Instead of testing every ranking against every axis (m!/2 x U), each distinct ranking
    adds its count to the 2^(m-2) axes it is single-peaked on (U x 2^(m-2) table lookups).
    Ties go to the axis that comes first in lexicographic order of option indices.
    """
    if m == 1:
        return float(counts.sum()), np.zeros(1, dtype=np.int64), 1
    place, index, perms, reverse = _axis_tables(m)
    # Float matmul goes through BLAS; the codes (< m^(m-1) <= 8^7) are exact in float64.
    codes = (order.astype(np.float64) @ place.T).astype(np.intp)
    directed = np.bincount(
        index[codes].ravel(), weights=np.repeat(counts, place.shape[0]), minlength=perms.shape[0]
    )
    # Each ranking fed one direction of each axis it fits: the axis total is both directions.
    scores = directed + directed[reverse]
    best = int(np.argmax(scores))
    top = float(scores[best])
    return top, perms[best], int(np.count_nonzero(scores == top)) // 2


def _preferences(rankings: ArrayLike, keys: list[str], axis_pos: np.ndarray | None) -> Preferences:
    m = len(keys)
    pos, counts = _unique_rankings(rankings, m)
    n = float(counts.sum())
    order = np.argsort(pos, axis=1)
    if n == 0:
        return Preferences(
            n_rankings=0,
            borda={key: NAN for key in keys},
            pairwise=[[0] * m for _ in range(m)],
            condorcet_winner=None,
            majority_cycle=False,
            cycles=[],
            share_single_peaked_axis=NAN,
            share_single_peaked_best=NAN,
            best_axis=None,
            n_best_axes=None,
        )
    borda = counts @ (m - 1 - pos) / n
    above = (pos[:, :, None] < pos[:, None, :]).astype(np.float64)
    pairwise = np.rint(np.einsum("u,uab->ab", counts, above)).astype(np.int64)
    beats = pairwise > pairwise.T
    winners = np.flatnonzero(beats.sum(axis=1) == m - 1)
    _, component = connected_components(beats.astype(np.int8), directed=True, connection="strong")
    sizes = np.bincount(component)
    cycles = [[keys[i] for i in np.flatnonzero(component == c)] for c in np.flatnonzero(sizes > 1)]
    share_axis = (
        NAN if axis_pos is None else float(counts[single_peaked(order, axis_pos)].sum() / n)
    )
    if m <= MAX_OPTIONS_FOR_AXIS_SEARCH:
        top, axis, n_best = _best_axis(order, counts, m)
        if axis_pos is not None and axis_pos[axis[0]] > axis_pos[axis[-1]]:
            axis = axis[::-1]  # same axis; shown in the direction of the given one
        best_share, best_axis = top / n, [keys[i] for i in axis]
    else:
        best_share, best_axis, n_best = NAN, None, None
    return Preferences(
        n_rankings=int(n),
        borda={key: to_float(v) for key, v in zip(keys, borda, strict=True)},
        pairwise=[[int(v) for v in row] for row in pairwise],
        condorcet_winner=keys[int(winners[0])] if winners.size == 1 else None,
        majority_cycle=bool(cycles),
        cycles=cycles,
        share_single_peaked_axis=share_axis,
        share_single_peaked_best=to_float(best_share),
        best_axis=best_axis,
        n_best_axes=n_best,
    )


def _opinion_groups(
    ratings: np.ndarray,
    *,
    k_values: Sequence[int],
    random_state: int,
    fit_sample_size: int,
    silhouette_sample_size: int,
) -> tuple[OpinionGroups, np.ndarray]:
    """Opinion groups at one wave and each participant's group (-1: incomplete ratings)."""
    complete = ~np.isnan(ratings).any(axis=1)
    x = ratings[complete]
    n, m = x.shape
    labels_all = np.full(ratings.shape[0], -1, dtype=np.int64)
    evr: list[float] = []
    components: list[list[float]] = []
    pca: PCA | None = None
    if n >= 2 and m >= 1 and float(np.ptp(x, axis=0).max()) > 0:
        with quiet():
            pca = PCA(n_components=min(2, m, n), random_state=random_state).fit(x)
        evr = float_list(pca.explained_variance_ratio_)
        components = [float_list(row) for row in pca.components_]
    empty = OpinionGroups(
        n=int(n),
        k=None,
        silhouette=NAN,
        silhouette_by_k={},
        sizes=[],
        centroids=[],
        centroids_2d=[],
        explained_variance_ratio=evr,
        components=components,
    )
    if pca is None or n < 3:
        return empty, labels_all

    # k-means on a fixed-seed subsample, then every participant is assigned to the nearest
    # centroid: same groups for the same data, and linear time at 100,000 participants.
    fit_x = x
    if n > fit_sample_size:
        pick = np.random.default_rng(random_state).choice(n, fit_sample_size, replace=False)
        fit_x = x[np.sort(pick)]
    scores: dict[int, float] = {}
    labelings: dict[int, np.ndarray] = {}
    for k in k_values:
        if k < 2 or k >= min(n, fit_x.shape[0]):
            continue
        with quiet():
            km = KMeans(n_clusters=k, n_init=3, random_state=random_state).fit(fit_x)
            labels = km.predict(x) if fit_x is not x else km.labels_
            if np.unique(labels).size < k:
                continue  # fewer distinct answer patterns than groups
            try:
                score = silhouette_score(
                    x,
                    labels,
                    sample_size=silhouette_sample_size if n > silhouette_sample_size else None,
                    random_state=random_state,
                )
            except ValueError:  # the silhouette sample fell into a single group
                continue
        scores[k] = float(score)
        labelings[k] = labels
    if not scores:
        return empty, labels_all
    best_k = max(scores, key=lambda k: (scores[k], -k))
    labels = labelings[best_k]
    # Largest group first, so that group 0 means the same thing in every report.
    sizes = np.bincount(labels, minlength=best_k)
    rank = np.empty(best_k, dtype=np.int64)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(best_k)
    labels = rank[labels]
    sizes = np.bincount(labels, minlength=best_k)
    centroids = np.stack(
        [np.bincount(labels, weights=x[:, j], minlength=best_k) / sizes for j in range(m)], axis=1
    )
    labels_all[complete] = labels
    return (
        OpinionGroups(
            n=int(n),
            k=best_k,
            silhouette=scores[best_k],
            silhouette_by_k={str(k): v for k, v in scores.items()},
            sizes=[int(v) for v in sizes],
            centroids=[float_list(row) for row in centroids],
            centroids_2d=[float_list(row) for row in pca.transform(centroids)],
            explained_variance_ratio=evr,
            components=components,
        ),
        labels_all,
    )


def _option_means(ratings: np.ndarray) -> tuple[FloatArray, np.ndarray]:
    answered = ~np.isnan(ratings)
    n = answered.sum(axis=0)
    with quiet():
        means = np.where(answered, ratings, 0.0).sum(axis=0) / n
    return np.where(n > 0, means, np.nan), n


def _order(means: FloatArray, keys: list[str]) -> list[str]:
    """Options by mean rating, highest first; ties keep the given order, unrated go last."""
    sortable = np.where(np.isnan(means), -np.inf, means)
    return [keys[i] for i in np.lexsort((np.arange(len(keys)), -sortable))]


def option_set(
    ratings_t1: ArrayLike,
    ratings_t2: ArrayLike,
    rankings_t1: ArrayLike,
    rankings_t2: ArrayLike,
    *,
    option_keys: Sequence[str],
    axis_order: Sequence[str] | None = None,
    k_values: Sequence[int] = (2, 3, 4, 5),
    random_state: int = 0,
    fit_sample_size: int = 20_000,
    silhouette_sample_size: int = 2_000,
) -> OptionSet:
    """The options as a set: orders, social choice, single-peakedness and opinion groups.

    Inputs (rows = participants aligned across waves, columns = options in ``option_keys``
    order): ``ratings_*`` float ratings with NaN for missing; ``rankings_*`` rank positions
    (1 = best).  A ranking row counts only if it is a complete permutation of 1..m (a row
    with any NaN is a missing ranking).  Pass the participants to analyse (e.g. those who
    completed both waves); each statistic uses what is available at its wave.

    * ``mean_rating_*``, ``n_ratings_*``: mean rating per option over those who rated it;
      ``order_*``: options by mean rating, highest first.  ``kendall_tau``/``kendall_p``:
      ``scipy.stats.kendalltau`` (tau-b) between the T1 and T2 means, i.e. between the two
      orders with ties kept as ties; NaN with fewer than 2 options rated at both waves.
    * ``preferences_*`` (:class:`Preferences`), from the rankings:
      ``borda`` = mean Borda points per participant (m - position: best m - 1, worst 0);
      ``pairwise[a][b]`` = number ranking option a above option b; a beats b when
      pairwise[a][b] > pairwise[b][a]; ``condorcet_winner`` beats every other option (None
      if there is none); ``cycles`` = the strongly connected components with more than one
      option of the majority relation, each containing a majority cycle (``majority_cycle``
      says whether there is any).  Single-peakedness (List, Luskin, Fishkin & McLean 2013):
      a ranking is single-peaked on an axis if for every k its k best options are adjacent
      on the axis.  ``share_single_peaked_axis`` is the share of participants single-peaked
      on ``axis_order`` (NaN without one); ``share_single_peaked_best`` the largest share
      over all m!/2 orderings (an ordering and its reverse are the same), ``best_axis`` the
      first ordering attaining it (in lexicographic order of option positions in
      ``option_keys``; shown in the direction of ``axis_order``)
      and ``n_best_axes`` how many orderings tie for it.  The search runs for up to
      ``MAX_OPTIONS_FOR_AXIS_SEARCH`` (8) options, otherwise NaN/None.
    * ``groups_*`` (:class:`OpinionGroups`), over participants with every option rated at
      that wave: PCA (``sklearn.decomposition.PCA``, 2 components) and k-means
      (``sklearn.cluster.KMeans``, n_init=3, ``random_state``) for k in ``k_values``,
      keeping the k with the highest silhouette (``sklearn.metrics.silhouette_score`` on a
      fixed-seed sample of ``silhouette_sample_size`` participants; ties: smaller k).
      Above ``fit_sample_size`` participants k-means is fitted on a fixed-seed subsample and
      everyone is assigned to the nearest centroid.  Groups are numbered by size, largest
      first; ``centroids`` are the groups' mean ratings (option space, ``option_keys``
      order), ``centroids_2d`` their PCA coordinates, ``components`` the PCA loadings and
      ``explained_variance_ratio`` their share of variance.  k = None when no k is usable
      (fewer than 3 complete rows, no spread, or fewer distinct rows than groups).
    * ``migration[g1][g2]``: participants in T1 group g1 and T2 group g2 (both waves
      grouped); ``n_migration`` their number.  The two waves are clustered separately, so
      group numbers are not matched across waves.
    """
    keys = [str(k) for k in option_keys]
    m = len(keys)
    if m == 0 or len(set(keys)) != m:
        raise ValueError("option_keys must be non-empty and unique")
    r1 = np.asarray(ratings_t1, dtype=np.float64)
    r2 = np.asarray(ratings_t2, dtype=np.float64)
    for name, mat in (("ratings_t1", r1), ("ratings_t2", r2)):
        if mat.ndim != 2 or mat.shape[1] != m:
            raise ValueError(f"{name} must be a participant x {m} matrix, got {mat.shape}")
    axis_pos: np.ndarray | None = None
    if axis_order is not None:
        axis = [str(k) for k in axis_order]
        if sorted(axis) != sorted(keys):
            raise ValueError("axis_order must contain each option key exactly once")
        axis_pos = np.empty(m, dtype=np.int64)
        axis_pos[[keys.index(k) for k in axis]] = np.arange(m)

    mean1, n1 = _option_means(r1)
    mean2, n2 = _option_means(r2)
    both = ~(np.isnan(mean1) | np.isnan(mean2))
    tau = p_tau = NAN
    if both.sum() >= 2:
        with quiet():
            res = sps.kendalltau(mean1[both], mean2[both])
        tau, p_tau = to_float(res.statistic), to_float(res.pvalue)

    group_kwargs: dict[str, Any] = {
        "k_values": tuple(k_values),
        "random_state": random_state,
        "fit_sample_size": fit_sample_size,
        "silhouette_sample_size": silhouette_sample_size,
    }
    # One thread: OpenMP k-means spin-waits badly when the machine (a Celery worker host)
    # is busy, and one thread also keeps the floating-point reductions reproducible.
    with threadpool_limits(limits=1):
        groups1, labels1 = _opinion_groups(r1, **group_kwargs)
        groups2, labels2 = _opinion_groups(r2, **group_kwargs)
    migration: list[list[int]] = []
    n_migration = 0
    if groups1.k is not None and groups2.k is not None and labels1.size == labels2.size:
        grouped = (labels1 >= 0) & (labels2 >= 0)
        table = np.bincount(
            labels1[grouped] * groups2.k + labels2[grouped], minlength=groups1.k * groups2.k
        ).reshape(groups1.k, groups2.k)
        migration = [[int(v) for v in row] for row in table]
        n_migration = int(grouped.sum())

    return OptionSet(
        option_keys=keys,
        axis_order=None if axis_order is None else [str(k) for k in axis_order],
        n_ratings_t1={k: int(v) for k, v in zip(keys, n1, strict=True)},
        n_ratings_t2={k: int(v) for k, v in zip(keys, n2, strict=True)},
        mean_rating_t1={k: to_float(v) for k, v in zip(keys, mean1, strict=True)},
        mean_rating_t2={k: to_float(v) for k, v in zip(keys, mean2, strict=True)},
        order_t1=_order(mean1, keys),
        order_t2=_order(mean2, keys),
        kendall_tau=tau,
        kendall_p=p_tau,
        preferences_t1=_preferences(rankings_t1, keys, axis_pos),
        preferences_t2=_preferences(rankings_t2, keys, axis_pos),
        groups_t1=groups1,
        groups_t2=groups2,
        migration=migration,
        n_migration=n_migration,
    )
