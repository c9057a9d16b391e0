"""Tables for the options as a set (rankings, Borda, Condorcet, single-peakedness, opinion
groups and their migration) and for small-group homogenization and polarization.

Both are computed per arm (all, treatment, control) over the arm's participants. What is shown
follows results.stats.disclosure like every other table: an arm is skipped when it is small or
when "all" minus the other arm would reveal a small one; a ratings column at a wave describes
the population the items table's wave columns describe for that option's item and arm (its
answerers, or its complete pairs where 1..k-1 are outside them), labelled population_t1/_t2;
opinion groups and their migration protect their small cells across the group sizes and the
migration table; small-group rows are those the items table shows, and the summaries average
over exactly those groups.
"""

from typing import Any

import numpy as np

from results import stats, tables
from results.compute.aggregates import PayloadBuilder
from results.compute.breakdowns import MAX_GROUP_ROWS, Layout, arm_mask, present_arms, whole
from results.compute.loading import PollData, json_row
from results.stats import disclosure
from surveys.models import Question

Row = dict[str, Any]


def option_matrices(
    data: PollData, ratings: dict[int, tuple[np.ndarray, np.ndarray]]
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Option keys (axis order) and participant x option ratings and rankings at T1 and T2."""
    keys = list(data.option_axis)
    if len(keys) < 2:
        return None
    rated = {
        q.option: i
        for i, q in enumerate(data.questions)
        if q.kind == Question.Kind.RATING and q.paired and q.option and i in ratings
    }
    r1 = np.full((data.n, len(keys)), np.nan)
    r2 = np.full((data.n, len(keys)), np.nan)
    for j, key in enumerate(keys):
        if key in rated:
            r1[:, j], r2[:, j] = ratings[rated[key]]
    ranking = [
        i for i, q in enumerate(data.questions) if q.kind == Question.Kind.RANKING and q.paired
    ]
    empty = np.full((data.n, len(keys)), np.nan)
    k1 = data.rankings.get((ranking[0], 1), empty) if ranking else empty
    k2 = data.rankings.get((ranking[0], 2), empty) if ranking else empty
    return keys, r1, r2, k1, k2


def options_tables(
    data: PollData, ratings: dict[int, tuple[np.ndarray, np.ndarray]], builder: PayloadBuilder
) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {name: [] for name in tables.OPTIONS}
    matrices = option_matrices(data, ratings)
    if matrices is None:
        return out
    keys, r1, r2, k1, k2 = matrices
    # The arms margin only (options have no breakdown rows): members and complete rankings.
    members = np.ones(data.n, dtype=bool)
    ranked = [~np.isnan(k).any(axis=1) for k in (k1, k2)]
    arms = Layout(data, include_groups=False, include_breakdowns=False).withheld(
        np.stack([members, *ranked]), k=data.min_subgroup_size, forced=builder.cell_withheld
    )
    item_of = {
        q.option: i for i, q in builder.items if q.option and i in ratings and q.option in keys
    }
    for arm, code in present_arms(data):
        if whole(arm) in arms:
            continue
        mask = arm_mask(data, code)
        result = stats.option_set(
            r1[mask], r2[mask], k1[mask], k2[mask], option_keys=keys, axis_order=keys
        )
        # A wave's ratings of an option are its item's raters at that wave in this arm; where
        # the items table describes that wave over the item's complete pairs, so does this.
        over_pairs: dict[str, dict[int, tuple[int | None, float | None]]] = {}
        for key, i in item_of.items():
            if whole(arm) in builder.item_withheld(i).pairs:
                # No items row, so no population to describe (empty, as in the items table).
                over_pairs[key] = {1: (None, None), 2: (None, None)}
                continue
            switched = builder.item_withheld(i).over_pairs(whole(arm))
            x1, x2 = ratings[i]
            dk = data.dont_know[i]
            pairs = mask & ~np.isnan(x1) & ~np.isnan(x2) & ~dk[0] & ~dk[1]
            over_pairs[key] = {
                wave: (int(pairs.sum()), float(np.mean(x[pairs])) if pairs.any() else np.nan)
                for wave, x in ((1, x1), (2, x2))
                if switched[wave - 1]
            }
        add_option_rows(out, arm, int(mask.sum()), result, data, over_pairs)
    return out


def opinion_cells_withheld(result: stats.OptionSet, k: int) -> frozenset[Any]:
    """Opinion groups and migration counts to withhold (results.stats.disclosure).

    Cells: ("size", wave, g) the groups, ("m", g1, g2) the migration counts, and hidden
    ("only", wave, g), members grouped at that wave only. Margins: the groups of a wave sum to
    those grouped (treated as published: it can equal a published n); each group is its
    migration row (column) plus its hidden rest; the migration counts sum to n_migration.
    """
    counts: dict[Any, tuple[int]] = {("n",): (result.n_migration,)}
    margins: list[disclosure.Margin] = []
    hidden: list[Any] = []
    migration = np.array(result.migration, dtype=np.int64).reshape(
        len(result.migration), -1 if result.migration else 0
    )
    for wave, groups in ((1, result.groups_t1), (2, result.groups_t2)):
        sizes = [int(v) for v in groups.sizes]
        counts[("placed", wave)] = (sum(sizes),)
        margins.append(
            disclosure.Margin(("placed", wave), tuple(("size", wave, g) for g in range(len(sizes))))
        )
        for g, size in enumerate(sizes):
            counts[("size", wave, g)] = (size,)
            if not migration.size:
                continue
            line = migration[g] if wave == 1 else migration[:, g]
            cells = [("m", g, h) if wave == 1 else ("m", h, g) for h in range(line.size)]
            counts[("only", wave, g)] = (size - int(line.sum()),)
            hidden.append(("only", wave, g))
            margins.append(disclosure.Margin(("size", wave, g), (*cells, ("only", wave, g))))
    for (g1, g2), count in np.ndenumerate(migration):
        counts[("m", g1, g2)] = (int(count),)
    if migration.size:
        parts = tuple(("m", g1, g2) for g1, g2 in np.ndindex(migration.shape))
        margins.append(disclosure.Margin(("n",), parts))
    return disclosure.suppress(counts, margins, k=k, hidden=hidden)


def rankings_row(
    arm: str,
    key: str,
    result: stats.OptionSet,
    data: PollData,
    over_pairs: dict[int, tuple[int | None, float | None]],
) -> Row:
    """One rankings row; ``over_pairs``: waves described over the item's complete pairs
    ((None, None): the items table has no row for the arm)."""
    row: Row = {"arm": arm, "option": key, "axis": data.option_axis[key]}
    for wave, n, mean in (
        (1, result.n_ratings_t1[key], result.mean_rating_t1[key]),
        (2, result.n_ratings_t2[key], result.mean_rating_t2[key]),
    ):
        n, mean = over_pairs.get(wave, (n, mean))
        row[f"n_t{wave}"], row[f"mean_t{wave}"] = n, mean
        label = "pairs" if wave in over_pairs else "answered"
        row[f"population_t{wave}"] = label if n is not None else None
    return row


def add_option_rows(
    out: dict[str, list[Row]],
    arm: str,
    n: int,
    result: stats.OptionSet,
    data: PollData,
    over_pairs: dict[str, dict[int, tuple[int | None, float | None]]],
) -> None:
    keys = result.option_keys
    ranked = [rankings_row(arm, key, result, data, over_pairs.get(key, {})) for key in keys]
    for wave in (1, 2):
        # Places follow the published means (whatever population each describes), so a rank
        # never orders a mean that is not shown.
        means = [(row[f"mean_t{wave}"], j) for j, row in enumerate(ranked)]
        order = sorted((m, j) for m, j in means if m is not None and not np.isnan(m))
        for place, (_, j) in enumerate(sorted(order, key=lambda mj: (-mj[0], mj[1])), 1):
            ranked[j][f"rank_t{wave}"] = place
    withheld = opinion_cells_withheld(result, data.min_subgroup_size)
    out["summary"].append(
        json_row(
            {
                "arm": arm,
                "n_participants": n,
                "kendall_tau": result.kendall_tau,
                "kendall_p": result.kendall_p,
                "axis": " ".join(keys),
                "n_migration": result.n_migration,
            },
            tables.OPTIONS["summary"],
        )
    )
    for key, row in zip(keys, ranked, strict=True):
        out["rankings"].append(json_row(row, tables.OPTIONS["rankings"]))
        borda = {
            "arm": arm,
            "option": key,
            "n_rankings_t1": result.preferences_t1.n_rankings,
            "n_rankings_t2": result.preferences_t2.n_rankings,
            "borda_t1": result.preferences_t1.borda.get(key),
            "borda_t2": result.preferences_t2.borda.get(key),
        }
        out["borda"].append(json_row(borda, tables.OPTIONS["borda"]))
    for wave, prefs, groups in (
        (1, result.preferences_t1, result.groups_t1),
        (2, result.preferences_t2, result.groups_t2),
    ):
        base = {"arm": arm, "wave": wave, "n_rankings": prefs.n_rankings}
        for a, row in zip(keys, prefs.pairwise, strict=False):
            for b, count in zip(keys, row, strict=False):
                if a != b:
                    values = {"arm": arm, "wave": wave, "option_a": a, "option_b": b}
                    out["pairwise"].append(
                        json_row({**values, "n_prefer_a": count}, tables.OPTIONS["pairwise"])
                    )
        cycles = " | ".join(" ".join(cycle) for cycle in prefs.cycles)
        condorcet = {
            **base,
            "winner": prefs.condorcet_winner,
            "majority_cycle": prefs.majority_cycle,
            "cycles": cycles,
        }
        out["condorcet"].append(json_row(condorcet, tables.OPTIONS["condorcet"]))
        peaked = {
            **base,
            "share_axis": prefs.share_single_peaked_axis,
            "share_best": prefs.share_single_peaked_best,
            "best_axis": " ".join(prefs.best_axis) if prefs.best_axis else None,
            "n_best_axes": prefs.n_best_axes,
        }
        out["single_peakedness"].append(json_row(peaked, tables.OPTIONS["single_peakedness"]))
        for group, size in enumerate(groups.sizes):
            if ("size", wave, group) in withheld:
                continue
            pcs = groups.centroids_2d[group] if group < len(groups.centroids_2d) else []
            values = {
                "arm": arm,
                "wave": wave,
                "k": groups.k,
                "silhouette": groups.silhouette,
                "group": group,
                "size": size,
                "pc1": pcs[0] if len(pcs) > 0 else None,
                "pc2": pcs[1] if len(pcs) > 1 else None,
            }
            out["opinion_groups"].append(json_row(values, tables.OPTIONS["opinion_groups"]))
            for key, mean in zip(keys, groups.centroids[group], strict=False):
                centroid = {"arm": arm, "wave": wave, "group": group, "option": key}
                out["opinion_group_centroids"].append(
                    json_row(
                        {**centroid, "mean_rating": mean}, tables.OPTIONS["opinion_group_centroids"]
                    )
                )
    for g1, row in enumerate(result.migration):
        for g2, count in enumerate(row):
            if count and ("m", g1, g2) not in withheld:
                values = {"arm": arm, "group_t1": g1, "group_t2": g2, "n": count}
                out["migration"].append(json_row(values, tables.OPTIONS["migration"]))


def small_group_tables(
    data: PollData,
    items: list[tuple[int, Any]],
    ratings: dict[int, tuple[np.ndarray, np.ndarray]],
    builder: PayloadBuilder,
) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {"summary": [], "groups": []}
    k = data.min_subgroup_size
    for arm, code in present_arms(data):
        if code is None:
            continue  # group numbers restart in each arm
        mask = arm_mask(data, code) & (data.group >= 0)
        if not mask.any():
            continue
        group_ids = data.group[mask]
        # Per-group rows only where the items table has them too (see breakdowns).
        detail = np.unique(group_ids).size <= MAX_GROUP_ROWS
        if not items:
            continue
        x1 = np.stack([ratings[i][0][mask] for i, _ in items])
        x2 = np.stack([ratings[i][1][mask] for i, _ in items])
        if detail:
            # Only the groups whose items row is shown: a withheld group's means would be the
            # items table's arm minus the others, and the summary's average minus the rest.
            for row, (i, _) in enumerate(items):
                held = builder.item_withheld(i).pairs
                unseen = [g for g in np.unique(group_ids) if (arm, "group", str(int(g))) in held]
                hidden = np.isin(group_ids, unseen)
                x1[row, hidden] = np.nan
                x2[row, hidden] = np.nan
        midpoints = [(q.scale_min + q.scale_max) / 2 for _, q in items]
        results = stats.small_groups_by_item(
            x1, x2, group_ids, midpoints=midpoints, min_size=k, per_group=detail
        )
        for (_, question), result in zip(items, results, strict=True):
            if result.n_groups == 0:
                continue
            summary = {"item": question.key, "arm": arm, **_fields(result)}
            out["summary"].append(json_row(summary, tables.SMALL_GROUPS["summary"]))
            for group in result.groups:
                if group.n < k:
                    continue
                values = {"item": question.key, "arm": arm, **_fields(group)}
                out["groups"].append(json_row(values, tables.SMALL_GROUPS["groups"]))
    return out


def _fields(result: Any) -> dict[str, Any]:
    return {name: getattr(result, name) for name in result.__dataclass_fields__}
