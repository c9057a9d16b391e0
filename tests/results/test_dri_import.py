"""A group's data imported through ``importresponses`` (considerations on a 1-11 scale, a ranking
of five options, 30 participants at T1 and T2) gives the DRI that scipy computes, pair by pair,
from the same file."""

import csv
import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse
from scipy import stats as sps

from results import tables
from results.compute.recompute import recompute_poll
from results.exports import codebook
from surveys.models import Poll
from tests.factories import consideration, make_poll, small_definition, texts
from tests.results.api_fixtures import bearer

OPTIONS = ("exit", "amnesty", "aid", "sanctions", "escalate")
STATEMENTS = [f"c{i}" for i in range(1, 11)]
N = 30
GROUPS = (1, 2, 3)


def five_option_poll() -> Poll:
    definition = small_definition(slug="dri-import")
    definition["design"]["min_subgroup_size"] = 5
    definition["options"] = [
        {"key": key, "text": texts(f"Option {key}"), "position": "AB"[axis > 2], "axis": axis}
        for axis, key in enumerate(OPTIONS, 1)
    ]
    scale = {"min": 1, "max": 11, "min_label": texts("Disagree"), "max_label": texts("Agree")}
    rating = {"min": 0, "max": 10, "min_label": texts("Oppose"), "max_label": texts("Support")}
    keep = [q for q in definition["questions"] if not q["key"].startswith("rate_")]
    definition["questions"] = [
        *(
            {
                "key": f"rate_{key}",
                "kind": "rating",
                "section": "policy",
                "waves": "both",
                "option": key,
                "text": texts(f"Support for {key}"),
                "scale": rating,
            }
            for key in OPTIONS
        ),
        *keep,
        *(consideration(key, scale) for key in STATEMENTS),
    ]
    return make_poll(**definition)


def write_file(path: Path) -> None:
    """30 participants in three groups; considerations and rankings lean with a latent position,
    so pairs spread over the plane; one participant gives 6 to every statement at T2."""
    rng = np.random.default_rng(17)
    position = rng.normal(0, 1, N)
    loading = rng.normal(0, 1, len(STATEMENTS))
    header = ["participant", "arm", "group", "completed_at"]
    for wave in (1, 2):
        header += [f"{key}_t{wave}" for key in STATEMENTS] + [f"rank_t{wave}"]
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for i in range(N):
            row = [f"p{i:02d}", "treatment", GROUPS[i % 3], "2026-01-10T12:00:00+00:00"]
            for wave in (1, 2):
                shift = 0.5 * (wave - 1) * np.sign(position[i])
                ratings = np.clip(
                    np.rint(6 + 2 * (position[i] + shift) * loading + rng.normal(0, 1.5, 10)), 1, 11
                )
                if wave == 2 and i == 4:
                    ratings[:] = 6
                distance = np.abs(position[i] + shift - np.linspace(-2, 2, 5))
                order = np.argsort(distance + rng.normal(0, 0.6, 5))
                row += [int(v) for v in ratings] + [";".join(OPTIONS[j] for j in order)]
            writer.writerow(row)


def scipy_dri(rows: list[dict[str, str]], wave: int) -> tuple[float, int, int]:
    """DRI from the file's cells: scipy's spearmanr per pair, the paper's formula."""
    lam = math.sqrt(2) / 2
    considerations = [[float(r[f"{k}_t{wave}"]) for k in STATEMENTS] for r in rows]
    # Rank of each option (1 = best) from the listed order.
    ranks = [[r[f"rank_t{wave}"].split(";").index(o) + 1 for o in OPTIONS] for r in rows]
    distances, left = [], 0
    for a, b in combinations(range(len(rows)), 2):
        if len(set(considerations[a])) == 1 or len(set(considerations[b])) == 1:
            left += 1
            continue
        r_c = sps.spearmanr(considerations[a], considerations[b]).statistic
        r_p = sps.spearmanr(ranks[a], ranks[b]).statistic
        distances.append(abs(r_c - r_p) / math.sqrt(2))
    return (lam - 2 * float(np.mean(distances))) / lam, len(distances), left


@pytest.mark.django_db
def test_imported_panel_gives_scipys_dri(tmp_path, make_researcher):
    poll = five_option_poll()
    path = tmp_path / "panel.csv"
    write_file(path)
    call_command("importresponses", poll.slug, str(path), stdout=None)
    payload = recompute_poll(poll.pk).payload
    with path.open() as stream:
        rows = list(csv.DictReader(stream))
    assert payload["meta"]["dri"]["preferences"] == "ranking:rank"
    for group in (None, *GROUPS):
        members = [r for r in rows if group is None or int(r["group"]) == group]
        for wave in (1, 2):
            (got,) = [
                r
                for r in payload["dri"]
                if r["arm"] == "treatment" and r["group"] == group and r["wave"] == wave
            ]
            expected, pairs, left = scipy_dri(members, wave)
            assert (got["n"], got["pairs"], got["pairs_left_out"]) == (len(members), pairs, left)
            assert got["dri"] == pytest.approx(expected, abs=1e-12)
    whole = [r for r in payload["dri"] if r["arm"] == "treatment" and r["group"] is None]
    assert whole[1]["pairs_left_out"] == N - 1  # the one who gave 6 to every statement
    # The same rows through the API (JSON and CSV, the documented columns in order).
    _, secret = make_researcher("granted", polls=(poll,))
    client = bearer(secret)
    for table, columns in (("dri", tables.DRI), ("dri_change", tables.DRI_CHANGE)):
        url = reverse(f"api:results-{table.replace('_', '-')}", kwargs={"slug": poll.slug})
        served = client.get(url).json()
        assert served["columns"] == list(columns)
        assert served["rows"] == payload[table]
        csv_lines = client.get(url, {"format": "csv"}).content.decode().splitlines()
        assert csv_lines[0].split(",") == list(columns)
        assert len(csv_lines) == 1 + len(payload[table])
    schema = codebook.results_schema("dri")
    assert "Niemeyer" in schema["description"] and "Small cells" in schema["description"]
