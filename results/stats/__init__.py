"""Statistics for Deliberative Poll results: the measures of the results tables, each with its
formula and references in the docstring of the function that computes it.

Pure numerical code: numpy, scipy, statsmodels and scikit-learn in, frozen dataclasses out.
Modules: ``dispersion`` (agreement, consensus, bimodality), ``item`` (item_change),
``comparisons`` (difference in differences, gap change, p adjustment), ``knowledge``, ``options``
(option_set), ``groups`` (small groups), ``disclosure`` (which cells may be shown) and ``base``
(input checks and helpers the others share); this package re-exports the public API, so
``from results import stats; stats.item_change(...)`` is the way to call it. Nothing here
imports Django, reads the database or knows about models: ``results.compute.loading`` gathers
the answers into arrays and ``results.compute.aggregates`` calls these functions.

Input conventions
-----------------
* **Answers** are 1-D ``float64`` arrays, one element per participant, aligned across waves
  (element ``i`` of the T1 and the T2 array is the same participant).  ``NaN`` marks a missing
  answer *and* a "don't know".
* **Don't know** is marked separately by an optional boolean array (``dk1``/``dk2``) of the same
  length, used only where the share of DK is reported; or every **missing kind** (don't know,
  refused, skipped, not asked: ``MISSING_KINDS``, codes 1..4) by an integer array
  (``missing1``/``missing2``).  A participant flagged DK counts as DK
  even if the answer array holds a number there.
* **Rating scales** run over the integers ``scale_min..scale_max`` (default 0..10).  Answers to
  :func:`item_change` must be integers on that scale (anything else raises ``ValueError``:
  it is a bug in the caller, not a property of the data).  Collapsed categories: *oppose* =
  below the midpoint ``(scale_min + scale_max) / 2``, *neutral* = at it, *support* = above it.
  On a scale with an even number of points no answer sits at the midpoint, so neutral is empty.
* **Weights** are an optional 1-D float array aligned with the answers.  A participant whose
  weight is ``NaN`` or ``0`` is left out entirely; negative or infinite weights raise
  ``ValueError``.  Weights are normalised to mean 1 over the cases a statistic uses, so weighted
  tests keep ``n`` as their number of observations (statsmodels ``DescrStatsW`` semantics).
* **Complete pairs**: paired statistics use the participants with a substantive answer at both
  waves (not missing, not DK).

Output conventions
------------------
* Every function returns a frozen dataclass whose :func:`dataclasses.asdict` is JSON-friendly:
  Python ``float``/``int``/``str``/``bool``/``None``, lists, and dicts with ``str`` keys.
  Undefined statistics are ``float('nan')`` (serialise with ``allow_nan`` or map NaN to null).
* Proportions called ``share_*`` are in 0..1; fields called ``pct_*`` and ``distribution_*``
  are percentages in 0..100.
* Nothing raises or warns for degenerate data (n = 0, 1 or 2, everything missing, all answers
  equal, all differences zero): the affected statistics are NaN.
* 95% confidence intervals; two-sided p-values.

Performance notes
-----------------
:func:`item_change` reduces the two answer arrays to one (K+2) x (K+2) joint frequency table
with a single ``np.bincount`` (K scale points plus DK and missing), and computes every statistic
from that table: about 1 ms of fixed cost per call plus about 1 ms per 100,000 participants,
so the 90 calls of a poll with 30 items stay around 150 ms at 100,000 participants.  The
library routines are still the ones doing the work: the t-test is ``DescrStatsW`` over the
distinct differences with their frequencies as weights (identical to ``scipy.stats.ttest_rel``
on the raw data), McNemar and Stuart-Maxwell are statsmodels'.  The only re-derivations
(Wilcoxon's normal approximation and small-sample permutation distribution, the bias-corrected
moments of the bimodality coefficient) exist because scipy has no frequency-weighted form and
its permutation branch takes seconds at 13 pairs; the tests check them against scipy on raw
data to 1e-9.  Holm's adjustment is written out for a similar reason (see ``_holm``).

Run the whole computation with one BLAS/OpenMP thread (``OPENBLAS_NUM_THREADS=1`` /
``OMP_NUM_THREADS=1`` in the worker, or ``threadpoolctl.threadpool_limits(1)``): these are
many small library calls, and on a busy host a second BLAS thread mostly waits.
:func:`option_set` limits itself to one thread while clustering.
"""

from results.stats.base import MISSING_CODES, MISSING_KINDS, hedges_correction
from results.stats.comparisons import (
    DiffInDiff,
    GapChange,
    adjust_pvalues,
    adjust_within_families,
    diff_in_diff,
    gap_change,
)
from results.stats.dispersion import agreement, bimodality_coefficient, consensus, polarization
from results.stats.groups import SmallGroup, SmallGroups, small_groups, small_groups_by_item
from results.stats.item import ItemChange, item_change
from results.stats.knowledge import Knowledge, knowledge, knowledge_did, knowledge_index
from results.stats.options import (
    MAX_OPTIONS_FOR_AXIS_SEARCH,
    OpinionGroups,
    OptionSet,
    Preferences,
    option_set,
)

__all__ = [
    "MAX_OPTIONS_FOR_AXIS_SEARCH",
    "MISSING_CODES",
    "MISSING_KINDS",
    "DiffInDiff",
    "GapChange",
    "ItemChange",
    "Knowledge",
    "OpinionGroups",
    "OptionSet",
    "Preferences",
    "SmallGroup",
    "SmallGroups",
    "adjust_pvalues",
    "adjust_within_families",
    "agreement",
    "bimodality_coefficient",
    "consensus",
    "diff_in_diff",
    "gap_change",
    "hedges_correction",
    "item_change",
    "knowledge",
    "knowledge_did",
    "knowledge_index",
    "option_set",
    "polarization",
    "small_groups",
    "small_groups_by_item",
]
