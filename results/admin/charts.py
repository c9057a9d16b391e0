"""What the results page draws, shaped from one snapshot's payload: plain data, so it is tested
without a browser. ``results.js`` draws the charts with the vendored Chart.js; the template
prints the same rows as the data table under each chart (which is also its text alternative).

The poll's central comparison comes first: with a control arm the default view puts treatment
and control side by side and leads with the difference in differences.
"""

from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _

COMPARE = "compare"  # treatment and control side by side
ARMS = (COMPARE, "all", "treatment", "control")
SIGNIFICANCE = 0.05
# An option sets a group apart when the group's mean rating differs from everyone else's in
# that wave by at least this many scale points; at most this many options name a group.
APART_POINTS = 1.0
APART_OPTIONS = 3


def p_text(p: float | None) -> str:
    """A p-value as researchers print it: three decimals, never a bare zero, with the page
    language's decimal sign (0,012 beside the other Ukrainian figures)."""
    if p is None:
        return _("n/a")
    if p < 0.001:
        return f"< {number_format(0.001, 3)}"
    return number_format(p, 3)


def arm_names() -> dict[str, str]:
    return {
        COMPARE: _("Treatment and control, side by side"),
        "all": _("Everyone (both arms pooled)"),
        "treatment": _("Treatment (deliberated)"),
        "control": _("Control (did not deliberate)"),
    }


def default_arm(payload: dict[str, Any]) -> str:
    """Side by side when the snapshot has a control arm, else everyone."""
    has_control = any(row.get("arm") == "control" for row in payload.get("items", []))
    return COMPARE if has_control else "all"


def panel_arms(arm: str) -> list[str]:
    """The arms drawn one beside the other for the chosen view."""
    return ["treatment", "control"] if arm == COMPARE else [arm]


def _whole(row: dict[str, Any], arm: str, subgroup: str, value: str) -> bool:
    return (
        row.get("arm") == arm
        and (row.get("subgroup") or "") == subgroup
        and str(row.get("subgroup_value") or "") == value
        and not row.get("weighted")
    )


def subgroup_choices(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(``subgroup=value``, label) pairs present in the snapshot's item rows."""
    seen: dict[str, str] = {}
    for row in payload.get("items", []):
        subgroup = row.get("subgroup") or ""
        if subgroup and subgroup != "group":
            value = str(row.get("subgroup_value") or "")
            seen.setdefault(f"{subgroup}={value}", f"{subgroup}: {value}")
    return sorted(seen.items())


def _distributions(items: list[dict[str, Any]], labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "item": row["item"],
            "label": labels.get(row["item"], row["item"]),
            "n": row.get("n_pairs"),
            **{
                f"{part}_{wave}": row.get(f"pct_{part}_{wave}")
                for part in ("oppose", "neutral", "support", "dk")
                for wave in ("t1", "t2")
            },
        }
        for row in items
    ]


def describe_groups(
    groups: list[dict[str, Any]],
    centroids: list[dict[str, Any]],
    option_labels: dict[str, str],
    baseline: dict[str, float],
) -> list[dict[str, Any]]:
    """Each opinion group of one arm and wave, named by the options that set it apart.

    A group's mean rating of an option is compared with ``baseline``, the mean rating of the
    option by the whole arm in that wave (the snapshot's rankings table): the options with the
    largest differences, at least APART_POINTS apart, describe it. Organisers read "rates X
    higher than average", never principal components. Options come in ``option_labels`` order
    (the poll's axis).
    """
    means: dict[int, dict[str, float]] = {}
    for row in centroids:
        if row.get("mean_rating") is not None:
            means.setdefault(row["group"], {})[row["option"]] = float(row["mean_rating"])
    present = {option for by_option in means.values() for option in by_option}
    options = [key for key in option_labels if key in present] + sorted(
        present - set(option_labels)
    )
    described = []
    for row in sorted(groups, key=lambda r: r["group"]):
        own = means.get(row["group"], {})
        apart = [
            (own[option] - baseline[option], option)
            for option in options
            if option in own and baseline.get(option) is not None
        ]
        apart.sort(key=lambda entry: -abs(entry[0]))
        chosen = [entry for entry in apart if abs(entry[0]) >= APART_POINTS][:APART_OPTIONS]

        described.append(
            {
                "group": row["group"],
                "number": row["group"] + 1,
                "size": row.get("size"),
                "higher": [
                    {"label": option_labels.get(o, o), "mean": own[o], "average": baseline[o]}
                    for difference, o in chosen
                    if difference > 0
                ],
                "lower": [
                    {"label": option_labels.get(o, o), "mean": own[o], "average": baseline[o]}
                    for difference, o in chosen
                    if difference < 0
                ],
                "profile": [
                    {"option": o, "label": option_labels.get(o, o), "mean": own.get(o)}
                    for o in options
                ],
            }
        )
    return described


def _opinion_groups(
    options: dict[str, Any], arm: str, option_labels: dict[str, str]
) -> list[dict[str, Any]]:
    waves = []
    for wave in (1, 2):
        groups = [
            row
            for row in options.get("opinion_groups", [])
            if row.get("arm") == arm and int(row.get("wave", 0)) == wave
        ]
        centroids = [
            row
            for row in options.get("opinion_group_centroids", [])
            if row.get("arm") == arm and int(row.get("wave", 0)) == wave
        ]
        baseline = {
            row["option"]: row.get(f"mean_t{wave}")
            for row in options.get("rankings", [])
            if row.get("arm") == arm
        }
        if groups:
            waves.append(
                {
                    "wave": wave,
                    "id": f"groups-{arm}-t{wave}",
                    "groups": describe_groups(groups, centroids, option_labels, baseline),
                }
            )
    return waves


def chart_data(
    payload: dict[str, Any],
    *,
    labels: dict[str, str],
    arm: str,
    subgroup: str = "",
    option_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the results charts draw, for one view (``ARMS``) and one subgroup
    (``key=value`` or "")."""
    group, _sep, value = subgroup.partition("=")
    rows = payload.get("items", [])
    option_labels = option_labels or {}
    options = payload.get("options", {}) or {}
    panels = [
        {
            "arm": panel_arm,
            "id": f"distributions-{panel_arm}",
            "distributions": _distributions(
                [row for row in rows if _whole(row, panel_arm, group, value)], labels
            ),
            "opinion_groups": _opinion_groups(options, panel_arm, option_labels),
        }
        for panel_arm in panel_arms(arm)
    ]
    has_control = any(row.get("arm") == "control" for row in rows)
    forest_arms = ("treatment", "control") if arm in (COMPARE, "all") and has_control else (arm,)
    forest = [
        {
            "item": row["item"],
            "label": labels.get(row["item"], row["item"]),
            "arm": forest_arm,
            "mean_diff": row["mean_diff"],
            "ci_low": row.get("ci_low"),
            "ci_high": row.get("ci_high"),
            "p_holm": row.get("p_holm"),
            "p_text": p_text(row.get("p_holm")),
            "significant": row.get("p_holm") is not None and row["p_holm"] < SIGNIFICANCE,
            "n": row.get("n_pairs"),
        }
        for forest_arm in forest_arms
        for row in rows
        if _whole(row, forest_arm, group, value) and row.get("mean_diff") is not None
    ]
    did = [
        {
            **row,
            "label": labels.get(row["item"], row["item"]),
            "p_text": p_text(row.get("p_welch")),
            "significant": row.get("p_welch") is not None and row["p_welch"] < SIGNIFICANCE,
        }
        for row in payload.get("did", [])
        if (row.get("subgroup") or "") == group and str(row.get("subgroup_value") or "") == value
    ]
    peaks = [
        {
            **row,
            **{
                f"pct_{key}": None if row.get(f"share_{key}") is None else 100 * row[f"share_{key}"]
                for key in ("axis", "best")
            },
        }
        for row in options.get("single_peakedness", [])
        if row.get("arm") in ARMS
    ]
    return {
        "panels": panels,
        # The first panel's rows, kept under their old name for readers of one arm.
        "distributions": panels[0]["distributions"] if panels else [],
        "forest": forest,
        "did": did,
        "single_peakedness": peaks,
        "significance": SIGNIFICANCE,
    }
