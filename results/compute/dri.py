"""The Deliberative Reason Index of a poll (formulas in results.stats.dri): tables ``dri`` and
``dri_change`` (columns in results.tables) and the (r_C, r_P) points of the admin's scatter.

What goes in. Considerations: the paired rating questions of ``family: considerations`` (any
scale; at least two). Preferences: the poll's first paired ranking question or, when it has
none, the paired ratings of the options, ranked per participant with ties averaged (at least two
options). A participant takes part when they rated every consideration and ordered every option
at both waves (so T1 and T2 describe the same people, as the items table's complete pairs do);
a don't know anywhere leaves them out, since a Spearman correlation needs the whole vector.

Statements on different scales (1-7 beside 0-10) are each put on 0..1 by their own scale's
ends before a participant's ratings are ranked, so a 7 of 7 ranks above a 6 of 10.

Who is compared with whom. A small group's DRI is over the pairs of its members; an arm's (and
the whole sample's) over every pair of the arm's participants, across groups: the arm taken as
one public. A participant's individual DRI is over the pairs with the others of their small
group, or of their arm when they are in none; the change table tests it T2 against T1 with a
paired t-test, per arm and per group. The control arm's participants are numbered in batches of
the group size as they arrive, though they never meet: their group rows and individual DRI
compare each with a batch of the same size, the counterfactual of a small group.

Disclosure. The cells are the arms and their small groups, protected by results.stats.disclosure
over the participants who enter both waves' pairs (whose correlations are defined at T1 and T2:
a participant who gave one value to everything enters none, so a group of five with three such
raters is a cell of two) with complementary suppression, as every other table: a
withheld cell has no row in either table and its pairs are not drawn. The points carry no ids,
go to the admin page only (payload key ``dri_points``, not an API table) and, for an arm with
more than MAX_POINTS pairs, are a fixed-seed random sample of them.
"""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from results import tables
from results.compute.aggregates import PayloadBuilder
from results.compute.breakdowns import MAX_GROUP_ROWS, Layout, arm_mask, present_arms, whole
from results.compute.loading import PollData, json_row
from results.stats import dri as measures
from surveys.models import Question

CONSIDERATIONS = "considerations"
MAX_POINTS = 1500
PAIRED_TEST = "paired_t_individual_dri"
Row = dict[str, Any]


@dataclass
class DRIInputs:
    """Per wave (index 0, 1) the participants x statements and participants x options arrays,
    who takes part, and what was read."""

    considerations: tuple[np.ndarray, np.ndarray]
    preferences: tuple[np.ndarray, np.ndarray]
    members: np.ndarray
    usable: np.ndarray  # members whose correlations are defined at both waves
    statement_keys: list[str]
    preference_source: str


NO_BATTERY = (
    "No DRI: it needs at least two rating questions of the family 'considerations' asked at both "
    "waves; this poll has {asked} such questions, {paired} of them at both waves."
)
NO_PREFERENCES = (
    "No DRI: it needs the participants' preferences at both waves, from a ranking question or "
    "the ratings of at least two options asked at both waves."
)


def dri_inputs(
    data: PollData, ratings: dict[int, tuple[np.ndarray, np.ndarray]]
) -> DRIInputs | str | None:
    """The two batteries; None for a poll without a considerations question, and for one whose
    batteries fall short (fewer than two paired of either), the reason in words."""
    battery = [
        i
        for i, q in enumerate(data.questions)
        if q.kind == Question.Kind.RATING and q.family.strip().casefold() == CONSIDERATIONS
    ]
    if not battery:
        return None
    statements = [i for i in battery if data.questions[i].paired and i in ratings]
    if len(statements) < 2:
        return NO_BATTERY.format(asked=len(battery), paired=len(statements))
    # Each statement on 0..1 by its own scale's ends, so mixed scales rank fairly.
    ends = np.array(
        [(data.questions[i].scale_min, data.questions[i].scale_max) for i in statements], float
    )
    span = np.where(ends[:, 1] > ends[:, 0], ends[:, 1] - ends[:, 0], 1.0)
    considerations = tuple(
        (np.stack([ratings[i][w] for i in statements], axis=1) - ends[:, 0]) / span for w in (0, 1)
    )
    ranking = [
        i for i, q in enumerate(data.questions) if q.kind == Question.Kind.RANKING and q.paired
    ]
    keys = list(data.option_axis)
    if ranking and len(keys) >= 2 and (ranking[0], 1) in data.rankings:
        preferences = tuple(data.rankings[(ranking[0], w)] for w in (1, 2))
        # Rank 1 is the best: turn ranks into points so that a higher value is preferred, as
        # with ratings (a correlation between two participants does not change either way).
        preferences = tuple(len(keys) + 1 - p for p in preferences)
        source = f"ranking:{data.questions[ranking[0]].key}"
    else:
        rated = {
            q.option: i
            for i, q in enumerate(data.questions)
            if q.kind == Question.Kind.RATING and q.paired and q.option and i in ratings
        }
        options = [key for key in keys if key in rated]
        if len(options) < 2:
            return NO_PREFERENCES
        preferences = tuple(
            np.stack([ratings[rated[key]][w] for key in options], axis=1) for w in (0, 1)
        )
        source = "option_ratings"
    complete = [
        ~np.isnan(c).any(axis=1) & ~np.isnan(p).any(axis=1)
        for c, p in zip(considerations, preferences, strict=True)
    ]
    members = complete[0] & complete[1]
    defined = [
        measures.unit_rows(measures.rank_rows(battery))[1]
        for battery in (*considerations, *preferences)
    ]
    return DRIInputs(
        considerations=(considerations[0], considerations[1]),
        preferences=(preferences[0], preferences[1]),
        members=members,
        usable=members & np.logical_and.reduce(defined),
        statement_keys=[data.questions[i].key for i in statements],
        preference_source=source,
    )


def cells_of(data: PollData) -> list[tuple[str, int | None, np.ndarray]]:
    """(arm, group, mask) of every row a DRI table can have: each arm whole (group None), then
    its small groups."""
    out: list[tuple[str, int | None, np.ndarray]] = []
    for arm, code in present_arms(data):
        in_arm = arm_mask(data, code)
        out.append((arm, None, in_arm))
        if code is None:
            continue
        groups = np.unique(data.group[in_arm & (data.group >= 0)])
        if groups.size <= MAX_GROUP_ROWS:
            out.extend((arm, int(g), in_arm & (data.group == g)) for g in groups)
    return out


def individual_dri(data: PollData, inputs: DRIInputs) -> np.ndarray:
    """2 x n: each participant's individual DRI at T1 and T2 within their small group, or
    their arm when they have none (NaN: not taking part, or no counted pair)."""
    out = np.full((2, data.n), np.nan)
    # One reference set per (arm, group); group -1 is "no group": the arm's ungrouped members
    # are compared with the whole arm.
    arm_code = data.arm.astype(np.int64)
    for code in np.unique(arm_code):
        in_arm = (arm_code == code) & inputs.members
        grouped = in_arm & (data.group >= 0)
        for w in (0, 1) if grouped.any() else ():
            out[w, grouped] = measures.individual_in_groups(
                inputs.considerations[w][grouped],
                inputs.preferences[w][grouped],
                data.group[grouped],
            )
        ungrouped = in_arm & (data.group < 0)
        if not ungrouped.any():
            continue
        for w in (0, 1):
            result = measures.group_dri(
                inputs.considerations[w][in_arm], inputs.preferences[w][in_arm]
            )
            values = np.asarray(result.individual)
            out[w, ungrouped] = values[ungrouped[in_arm]]
    return out


def dri_tables(
    data: PollData, ratings: dict[int, tuple[np.ndarray, np.ndarray]], builder: PayloadBuilder
) -> tuple[list[Row], list[Row], dict[str, Any], dict[str, Any]]:
    """(dri rows, dri_change rows, meta, scatter points by arm) of a poll."""
    inputs = dri_inputs(data, ratings)
    if not isinstance(inputs, DRIInputs):
        missing = {NO_PREFERENCES: "preferences"}.get(inputs or "", "considerations")
        reason = {"reason": inputs, "missing": missing} if inputs else {}
        return [], [], {"computed": False, **reason}, {}
    layout = Layout(data, include_breakdowns=False)
    withheld = layout.withheld(
        inputs.usable[None, :], k=data.min_subgroup_size, forced=builder.cell_withheld
    )
    individual = individual_dri(data, inputs)
    rows: list[Row] = []
    change: list[Row] = []
    points: dict[str, Any] = {}
    sampled: list[dict[str, Any]] = []
    for arm, group, mask in cells_of(data):
        key = whole(arm) if group is None else (arm, "group", str(group))
        who = mask & inputs.members
        if key in withheld or not who.any():
            continue
        results = [
            measures.group_dri(inputs.considerations[w][who], inputs.preferences[w][who])
            for w in (0, 1)
        ]
        for wave, result in enumerate(results, 1):
            values = {"arm": arm, "group": group, "wave": wave, **asdict(result)}
            rows.append(json_row(values, tables.DRI))
            if result.sampled:
                sampled.append({"arm": arm, "group": group, "wave": wave})
        test = measures.individual_change(individual[0, who], individual[1, who])
        values = {
            "arm": arm,
            "group": group,
            "n": int(who.sum()),
            "dri_t1": results[0].dri,
            "dri_t2": results[1].dri,
            "dri_change": results[1].dri - results[0].dri,
            "n_individual": test.n,
            "mean_individual_t1": test.mean_t1,
            "mean_individual_t2": test.mean_t2,
            "mean_diff": test.mean_diff,
            "ci_low": test.ci_low,
            "ci_high": test.ci_high,
            "t": test.t,
            "df": test.df,
            "p": test.p,
            "test": PAIRED_TEST,
        }
        change.append(json_row(values, tables.DRI_CHANGE))
        if group is None:
            points[arm] = scatter(inputs, who)
    meta = {
        "computed": True,
        "considerations": inputs.statement_keys,
        "preferences": inputs.preference_source,
        "n_members": int(inputs.members.sum()),
        # Rows whose dri is estimated from a random sample of pairs (results.stats.dri).
        "sampled": sampled,
        "max_pairs": measures.MAX_PAIRS,
        "sample_pairs": measures.SAMPLE_PAIRS,
    }
    return rows, change, meta, points


def scatter(inputs: DRIInputs, who: np.ndarray) -> dict[str, Any]:
    """Per wave, the (r_C, r_P) points of the arm's pairs (rounded: a plot needs no more)."""
    out: dict[str, Any] = {}
    for wave in (1, 2):
        total, xy = measures.pair_points(
            inputs.considerations[wave - 1][who],
            inputs.preferences[wave - 1][who],
            limit=MAX_POINTS,
            seed=wave,
        )
        out[f"t{wave}"] = {"pairs": total, "points": np.round(xy, 4).tolist()}
    return out
