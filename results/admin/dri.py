"""What the results page shows of the Deliberative Reason Index: the tables ``dri`` and
``dri_change`` per group before and after, and the consistency scatter of the pairs' (r_C, r_P)
points (payload ``dri_points``), T1 beside T2. Plain data, tested without a browser; results.js
draws it.

The points are for readers of the latest snapshot (organisers and microdata grants) only: they
are about pairs of individual participants, so an aggregates-only grant sees the tables.
"""

from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _

from results.admin.charts import SIGNIFICANCE, p_text, panel_arms


def _label(arm: str, group: int | None) -> str:
    arm_name = {"treatment": _("treatment"), "control": _("control"), "all": _("everyone")}
    name = arm_name.get(arm, arm)
    if group is None:
        return _("%(arm)s: whole arm") % {"arm": name}
    return _("%(arm)s: group %(number)s") % {"arm": name, "number": group}


def dri_view(payload: dict[str, Any], arm: str, *, points: bool) -> dict[str, Any] | None:
    """None when the snapshot has no DRI (the poll lacks a considerations battery)."""
    waves: dict[tuple[str, int | None], dict[int, dict[str, Any]]] = {}
    for row in payload.get("dri") or []:
        waves.setdefault((row["arm"], row.get("group")), {})[int(row["wave"])] = row
    if not waves:
        # A poll with a considerations battery the DRI cannot use says why, not nothing.
        missing = ((payload.get("meta") or {}).get("dri") or {}).get("missing")
        if missing == "preferences":
            return {
                "reason": _(
                    "No DRI yet: it needs the participants' preferences at both waves, from a "
                    "ranking question or the ratings of at least two options asked at both waves."
                )
            }
        if missing == "considerations":
            return {
                "reason": _(
                    "No DRI yet: it needs at least two rating questions of the family "
                    "“considerations” asked at both waves (the question's Family field)."
                )
            }
        return None
    arms = panel_arms(arm)
    rows = []
    for change in payload.get("dri_change") or []:
        key = (change["arm"], change.get("group"))
        if change["arm"] not in arms or key not in waves:
            continue
        t1, t2 = waves[key].get(1, {}), waves[key].get(2, {})
        rows.append(
            {
                **change,
                "label": _label(*key),
                "whole": change.get("group") is None,
                "pairs_t1": t1.get("pairs"),
                "pairs_left_out_t1": t1.get("pairs_left_out"),
                "pairs_t2": t2.get("pairs"),
                "pairs_left_out_t2": t2.get("pairs_left_out"),
                "p_text": p_text(change.get("p")),
                "significant": change.get("p") is not None and change["p"] < SIGNIFICANCE,
            }
        )
    # Each arm's whole row first, then its groups in number order.
    rows.sort(key=lambda r: (arms.index(r["arm"]), not r["whole"], r.get("group") or 0))
    scatters = []
    for panel_arm in arms if points else ():
        data = (payload.get("dri_points") or {}).get(panel_arm)
        if not data:
            continue
        scatters.append(
            {
                "arm": panel_arm,
                "waves": [
                    {
                        "wave": wave,
                        "id": f"dri-{panel_arm}-t{wave}",
                        "pairs": data[f"t{wave}"]["pairs"],
                        "shown": len(data[f"t{wave}"]["points"]),
                        # Grouped as the language writes them (22,578; 22 578).
                        "pairs_text": number_format(data[f"t{wave}"]["pairs"], force_grouping=True),
                        "shown_text": number_format(
                            len(data[f"t{wave}"]["points"]), force_grouping=True
                        ),
                        "points": data[f"t{wave}"]["points"],
                    }
                    for wave in (1, 2)
                ],
            }
        )
    return {
        "rows": rows,
        "scatters": scatters,
        "points_withheld": not points,
        # Two bars a row; an integer, so no decimal comma in Ukrainian.
        "height_rem": round(5 + 1.8 * len(rows)),
        "phone_height_rem": round(5 + 3.4 * len(rows)),  # labels wrapped on three lines
    }
