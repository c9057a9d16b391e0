"""The results page's shaping of a snapshot: treatment and control side by side by default,
opinion groups named by the options that set them apart, short labels on every chart."""

from typing import Any

import pytest

from results.admin.charts import COMPARE, chart_data, default_arm, describe_groups

ITEM = {
    "subgroup": "",
    "subgroup_value": "",
    "weighted": False,
    "mean_diff": 0.5,
    "ci_low": 0.1,
    "ci_high": 0.9,
    "p_holm": 0.01,
    "n_pairs": 20,
    **{f"pct_{part}_t{w}": 10.0 for part in ("oppose", "neutral", "support", "dk") for w in (1, 2)},
}


def payload(*, control: bool) -> dict[str, Any]:
    arms = ["all", "treatment", "control"] if control else ["all", "treatment"]
    items = [{**ITEM, "item": "rate_exit", "arm": arm} for arm in arms]
    did = [{"item": "rate_exit", "did": 0.8, "p_welch": 0.2, "subgroup": "", "subgroup_value": ""}]
    return {"items": items, "did": did if control else [], "options": {}}


def test_with_a_control_arm_the_default_view_is_treatment_beside_control() -> None:
    data = payload(control=True)
    assert default_arm(data) == COMPARE
    charts = chart_data(data, labels={"rate_exit": "Exit"}, arm=COMPARE)
    assert [panel["arm"] for panel in charts["panels"]] == ["treatment", "control"]
    assert [row["label"] for row in charts["panels"][1]["distributions"]] == ["Exit"]
    assert {row["arm"] for row in charts["forest"]} == {"treatment", "control"}
    assert charts["did"][0]["label"] == "Exit" and charts["did"][0]["p_text"] == "0.200"


def test_without_a_control_arm_the_default_view_is_everyone() -> None:
    data = payload(control=False)
    assert default_arm(data) == "all"
    charts = chart_data(data, labels={}, arm="all")
    assert [panel["arm"] for panel in charts["panels"]] == ["all"]
    assert {row["arm"] for row in charts["forest"]} == {"all"}


def test_a_group_is_described_by_the_options_it_rates_a_point_or_more_off_the_average() -> None:
    groups = [{"group": 0, "size": 30}, {"group": 1, "size": 10}]
    means = {0: {"exit": 8.0, "aid": 5.5, "war": 2.0}, 1: {"exit": 2.0, "aid": 5.0, "war": 9.0}}
    centroids = [
        {"group": g, "option": o, "mean_rating": m}
        for g, row in means.items()
        for o, m in row.items()
    ]
    # The arm's average at that wave: the size-weighted mean of the groups, (30 a + 10 b) / 40.
    baseline = {o: (30 * means[0][o] + 10 * means[1][o]) / 40 for o in ("exit", "aid", "war")}
    assert baseline == {"exit": 6.5, "aid": 5.375, "war": 3.75}
    labels = {"war": "Escalate", "aid": "Aid", "exit": "Exit"}  # the poll's axis order

    first, second = describe_groups(groups, centroids, labels, baseline)

    # Group 1: war 2.0 vs 3.75 (-1.75), exit 8.0 vs 6.5 (+1.5), aid +0.125 (under a point).
    assert [(o["label"], o["mean"], o["average"]) for o in first["higher"]] == [("Exit", 8.0, 6.5)]
    assert [(o["label"], o["mean"]) for o in first["lower"]] == [("Escalate", 2.0)]
    assert first["number"] == 1 and first["size"] == 30
    # Group 2: war +5.25 and exit -4.5, largest first; aid -0.375 is left out.
    assert [o["label"] for o in second["higher"]] == ["Escalate"]
    assert [o["label"] for o in second["lower"]] == ["Exit"]
    assert [cell["label"] for cell in second["profile"]] == ["Escalate", "Aid", "Exit"]


@pytest.mark.parametrize("missing", ["exit", "aid"])
def test_an_option_without_an_average_names_no_group(missing: str) -> None:
    groups = [{"group": 0, "size": 5}]
    centroids = [{"group": 0, "option": "exit", "mean_rating": 9.0}]
    centroids.append({"group": 0, "option": "aid", "mean_rating": 1.0})
    baseline: dict[str, float] = {"exit": 5.0, "aid": 5.0}
    del baseline[missing]
    (group,) = describe_groups(groups, centroids, {"exit": "Exit", "aid": "Aid"}, baseline)
    named = [o["label"] for o in group["higher"] + group["lower"]]
    assert named == [label for key, label in (("exit", "Exit"), ("aid", "Aid")) if key != missing]
