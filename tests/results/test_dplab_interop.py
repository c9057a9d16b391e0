"""The Stanford Deliberative Democracy Lab's analysis package (``DeliberativePolling`` 1.4.2 on
PyPI) runs unchanged on the seed poll's ``sav-waves`` export, and the paired figures it writes
for the treatment arm, before v. after, are our results tables' figures.

The package needs pandas 2 (it calls ``DataFrame.applymap``; the project locks pandas 3), so the
test installs it, pinned with every dependency (``dplab-requirements.txt``), into a virtual
environment of its own under pytest's temporary directory, using pip's cache. An install that
fails fails the test: this check must run in CI, never skip.

Simulated participants: both arms, weights, some don't know, and a quarter without any T2 answer.
Run with ``-s`` to see the side-by-side table of our figures and the package's.

Time: the package compares every group at every time under every weight, 20 comparisons here,
each about 25 s of pandas on a busy two-core machine (9 minutes in all). The test narrows its
list of comparisons (the ``combinations`` it draws them from; nothing else is touched) to five
that take every path of its code: each arm before v. after unweighted (paired tests), the
treatment arm weighted, and treatment v. control at each time (independent tests, the T2-only
evaluations empty before). ``DPLAB_ALL_COMPARISONS=1`` runs all 20.
"""

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyreadstat
import pytest
from django.db import transaction
from scipy import stats as sps

from results.compute.recompute import recompute_poll
from results.exports import waves
from results.simulate import add_simulated_participants
from surveys.models import Answer, Participant
from tests.results.conftest import load_seed_poll

# Marked, so the module's fixture gets the test database (unmarked, django_db_setup leaves the
# connection on the configured database itself).
pytestmark = pytest.mark.django_db
REQUIREMENTS = Path(__file__).with_name("dplab-requirements.txt")
PARTICIPANTS = 200
BACKGROUND = "age"  # the package breaks each table down by a nominal variable; any will do
# Runs the package, then reads the "All" columns of its tables for the treatment arm, before v.
# after, unweighted and weighted, exactly as written (text), into JSON on stdout.
RUN_PACKAGE = r"""
import glob, itertools, json, os, sys
import pandas as pd
import DeliberativePolling
from DeliberativePolling import outputs

def chosen(samples, r):
    for one, two in itertools.combinations(samples, r):  # (group, time, weight) each
        paired = one[0] == two[0] and one[2] == two[2]
        if paired and (one[0] == "Treatment" or one[2] == "Unweighted"):
            yield one, two
        elif one[0] != two[0] and one[1] == two[1] and one[2] == two[2] == "Unweighted":
            yield one, two

if not os.environ.get("DPLAB_ALL_COMPARISONS"):
    DeliberativePolling.combinations = chosen
outputs(sys.argv[1], fast=True)
found = {}
for weight in ("Unweighted", "weight"):
    folder = f"Outputs/Before v. After/Treatment at Before v. After ({weight})"
    (path,) = glob.glob(f"{glob.escape(folder)}/{glob.escape(sys.argv[2])}/Tables - Ordinal*")
    table = pd.read_excel(path, header=None, dtype=str)
    header = list(table.iloc[1])
    before, after, difference = [i for i, h in enumerate(header) if str(h).startswith("All")]
    items = {
        row[1]: [row[before], row[after], row[difference]]
        for row in table.itertuples(index=False, name=None)
        if isinstance(row[1], str) and row[1] != "Variable"
    }
    found[weight] = {"n": [header[before], header[after]], "items": items}
found["comparisons"] = sorted(path.split("/")[-1] for path in glob.glob("Outputs/*/*"))
print("RESULT" + json.dumps(found))
"""


def start_install(folder: Path) -> subprocess.Popen:
    """Create the lab package's environment and install it, in the background (about a
    minute), while the database work goes on."""
    python = folder / "bin" / "python"
    script = (
        f"{sys.executable} -m venv {folder} && {python} -m pip install --quiet "
        f"--disable-pip-version-check -r {REQUIREMENTS}"
    )
    return subprocess.Popen(
        ["sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def simulated_poll() -> Any:
    poll = load_seed_poll()
    add_simulated_participants(poll=poll, n=PARTICIPANTS, seed=16, weights=True, group_size=20)
    # In each arm, a quarter has no T2 answer, as in an imported panel with attrition (an import
    # marks its rows completed), and 15 of the others said don't know at T1 to every rating that
    # offers it. So in both arms 14 or more answer each wave without being a complete pair:
    # the results then publish each wave's n over all who answered it, not over the pairs (see
    # codebook.DISCLOSURE), and the package's n can be compared with ours.
    people = list(Participant.objects.filter(poll=poll).order_by("id").values_list("id", "arm"))
    dropped, dont_know = [], []
    for arm in ("treatment", "control"):
        members = [pk for pk, their_arm in people if their_arm == arm]
        dropped += members[::4]
        dont_know += [pk for index, pk in enumerate(members) if index % 4][:15]
    Answer.objects.filter(participant_id__in=dropped, wave=2).delete()
    offered = Answer.objects.filter(question__kind="rating", question__dont_know=True)
    offered.filter(participant_id__in=dont_know, wave=1).update(
        value=None, number=None, missing=Answer.Missing.DONT_KNOW
    )
    return poll


@pytest.fixture(scope="module")
def runs(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("dplab")
    install = start_install(folder / "venv")
    started = time.monotonic()
    # One poll for the module, rolled back at its end (answers protect a poll from deletion).
    with django_db_blocker.unblock(), transaction.atomic():
        poll = simulated_poll()
        payload = recompute_poll(poll.pk).payload
        sav = folder / "poll.sav"
        waves.write_sav(poll, sav)
        age_label = next(v.label for v in waves.variables_of(poll) if v.name == BACKGROUND)
        ratings = {q.key for q in poll.questions.all() if q.paired and q.kind == "rating"}
        transaction.set_rollback(True)
    out, err = install.communicate()
    if install.returncode != 0:
        pytest.fail(f"Installing DeliberativePolling failed:\n{out[-3000:]}\n{err[-3000:]}")
    installed = time.monotonic()
    run = subprocess.run(
        [str(folder / "venv" / "bin" / "python"), "-c", RUN_PACKAGE, str(sav), age_label],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        pytest.fail(f"outputs() failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    found = json.loads(run.stdout.rsplit("RESULT", 1)[1])
    took = f"{installed - started:.0f} s, outputs() {time.monotonic() - installed:.0f} s"
    print(f"\ninstall (beside the database work) {took}")
    return {
        "payload": payload,
        "package": found,
        "sav": sav,
        "stdout": run.stdout,
        "ratings": ratings,
    }


def ours(payload: dict[str, Any], table: str, weighted: bool) -> dict[str, dict[str, Any]]:
    """Our treatment-arm rows of a results table (whole arm, no subgroup), by item."""
    return {
        row["item"]: row
        for row in payload[table]
        if row["arm"] == "treatment" and not row["subgroup"] and row["weighted"] == weighted
    }


def n_of(header: str) -> int:
    return int(header.split("(n = ")[1].rstrip(")"))


def test_the_package_runs_to_the_end_on_the_export(runs):
    assert "Analysis complete" in runs["stdout"]
    assert {
        "Treatment at Before v. After (Unweighted)",
        "Treatment at Before v. After (weight)",
        "Control at Before v. After (Unweighted)",
        "Treatment v. Control at Before (Unweighted)",
        "Treatment v. Control at After (Unweighted)",
    } <= set(runs["package"]["comparisons"])


def test_the_export_has_both_arms_drop_outs_dont_knows_and_weights(runs):
    frame, meta = pyreadstat.read_sav(str(runs["sav"]), user_missing=True)
    assert sorted(frame["Group"].unique()) == [1, 2]
    per_wave = frame.groupby("Time")["ID"].nunique()
    assert per_wave[2] < per_wave[1] == PARTICIPANTS
    assert (frame["rate_amnesty"] == -99).any()
    assert meta.variable_measure["weight"] == "scale" and frame["weight"].notna().all()


def test_paired_means_n_and_p_equal_our_results_table(runs):
    items = ours(runs["payload"], "items", weighted=False)
    details = ours(runs["payload"], "item_details", weighted=False)
    package = runs["package"]["Unweighted"]
    assert set(items) == runs["ratings"]  # every paired rating of the seed poll
    compared: list[str] = []
    for key, row in items.items():
        before, after, difference = package["items"][key]
        assert before == f"{row['mean_t1']:.3f}", key
        assert after == f"{row['mean_t2']:.3f}", key
        assert difference == f"{row['mean_diff']:.3f} (P = {row['p_t']:.3f})", key
        # The package's n is the arm's rows at each wave; ours is who answered the item then,
        # the same people here, since don't know is an answer (and is outside both means).
        # Where our small-cell rule publishes a wave over the pairs instead (population
        # 'pairs'), our n is n_pairs; the package, which has no such rule, prints the rows.
        detail = details[key]
        for wave, header in zip((1, 2), package["n"], strict=True):
            if detail[f"population_t{wave}"] == "answered":
                compared.append(key)
                assert n_of(header) == detail[f"n_t{wave}"], (key, wave)
            else:
                assert detail[f"n_t{wave}"] == row["n_pairs"] < n_of(header), (key, wave)
    assert len(compared) > 1.8 * len(items)  # nearly every item's n at both waves
    # The poll was rolled back: count the arm's participants at each wave in the export.
    frame, _ = pyreadstat.read_sav(str(runs["sav"]))
    arm = frame[frame["Group"] == 1].groupby("Time").size()
    assert [n_of(h) for h in package["n"]] == [arm[1], arm[2]]


def test_weighted_means_agree_and_p_differs_only_by_frequency_weights(runs):
    """The package treats weights as frequencies (df = S - 1); ours are normalised to mean 1
    over the pairs (df = n - 1). Its t is ours times sqrt((S - 1)/(n - 1)), as the codebook says:
    checked with scipy's t distribution from our t and the weights in the export."""
    items = ours(runs["payload"], "items", weighted=True)
    package = runs["package"]["weight"]
    frame, _ = pyreadstat.read_sav(str(runs["sav"]))
    treated = frame[frame["Group"] == 1]
    for key, row in items.items():
        before, after, difference = package["items"][key]
        assert before == f"{row['mean_t1']:.3f}", key
        assert after == f"{row['mean_t2']:.3f}", key
        pairs = treated.pivot(index="ID", columns="Time", values=key).dropna()
        assert len(pairs) == row["n_pairs"], key
        weights = treated[treated["Time"] == 1].set_index("ID")["weight"].loc[pairs.index]
        total = float(weights.sum())
        t = row["t"] * ((total - 1) / (row["n_pairs"] - 1)) ** 0.5
        p = 2 * sps.t.sf(abs(t), total - 1)
        assert difference == f"{row['mean_diff']:.3f} (P = {p:.3f})", key
        assert abs(total - row["n_pairs"]) > 1  # the weights do not average 1: a real check


def test_side_by_side_for_the_report(runs):
    """Three items, our figure beside the package's, unweighted and weighted (printed with -s).
    The weighted p differs by method (see the weighted test and the codebook)."""
    lines = ["item | weights | n T1/T2 ours (pairs) | n package | mean T1 | mean T2 | p"]
    for key in ("rate_amnesty", "rate_sanctions", "rate_staged_escalation"):
        for weighted, name in ((False, "Unweighted"), (True, "weight")):
            row = ours(runs["payload"], "items", weighted=weighted)[key]
            detail = ours(runs["payload"], "item_details", weighted=weighted)[key]
            package = runs["package"][name]
            before, after, difference = package["items"][key]
            lines.append(
                f"{key} | {name} | {detail['n_t1']}/{detail['n_t2']} ({row['n_pairs']}) | "
                f"{'/'.join(str(n_of(h)) for h in package['n'])} | "
                f"{row['mean_t1']:.6f} / {before} | {row['mean_t2']:.6f} / {after} | "
                f"{row['p_t']:.6g} / {difference.split('P = ')[1][:-1]}"
            )
            assert before == f"{row['mean_t1']:.3f}" and after == f"{row['mean_t2']:.3f}"
    print("\n" + "\n".join(lines))
