"""A published Deliberative Poll as real studies ship it, imported and checked against scipy.

The panel is written the way such files come: upper-case variable names (Q1, Q2A..., PARTY,
AGE), the study's own missing codes (77 don't know, 98 refused, -8 skipped), a party breakdown,
no positions, 48 proposals as options, and some respondents without a second wave. It goes in
through the import and out as the results payload; every number checked here is computed again
from the same CSV with pandas and scipy only (no code of the platform). Exported as SPSS and
Stata and read back with pyreadstat, every answer keeps its missing kind.
"""

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from scipy import stats as sps

from results import tables
from results.compute.recompute import recompute_poll
from results.exports.imports import import_responses
from results.exports.statfiles import write_dta, write_sav
from surveys.definition.files import save_poll, validate

pytestmark = pytest.mark.django_db

N = 500
PROPOSALS = [f"Q{2 + j // 26}{chr(ord('A') + j % 26)}" for j in range(48)]  # Q2A .. Q3V
PARTIES = ["Democrat", "Republican", "Independent"]
AGE_BINS = [18, 30, 45, 65]
CODES = {77: "dk", 98: "refused", -8: "skipped"}
K = 14  # the poll's minimum subgroup size


def en(text: str) -> dict[str, str]:
    return {"en": text}


def rating(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "kind": "rating",
        "section": "policy",
        "waves": "both",
        "dont_know": True,
        "text": en(f"How much do you support {key}?"),
        "scale": {"min": 0, "max": 10, "min_label": en("Oppose"), "max_label": en("Support")},
        **extra,
    }


def panel_definition() -> dict[str, Any]:
    return {
        "format": 1,
        "slug": "published-panel",
        "status": "open",
        "languages": ["en"],
        "title": {"en": "A published Deliberative Poll"},
        "question": {"en": "What should be done?"},
        "intro": {"en": "Imported from the study's files."},
        "design": {"control_share": 0.5, "group_size": 10, "min_subgroup_size": K},
        "missing": {77: "dont_know", 98: "refused", -8: "skipped"},
        "sections": [
            {"key": "policy", "title": {"en": "Proposals"}},
            {"key": "background", "title": {"en": "About you"}},
        ],
        "positions": [],
        "options": [
            {"key": f"P{j + 1:02d}", "text": {"en": f"Proposal {j + 1}"}, "axis": j + 1}
            for j in range(len(PROPOSALS))
        ],
        "questions": [
            rating("Q1", family="democracy"),
            *(rating(key, option=f"P{j + 1:02d}") for j, key in enumerate(PROPOSALS)),
            {
                "key": "PARTY",
                "kind": "single",
                "section": "background",
                "waves": "t1",
                "breakdown": True,
                "text": {"en": "Party"},
                "choices": [{"key": p, "label": {"en": p}} for p in PARTIES],
            },
            {
                "key": "AGE",
                "kind": "number",
                "section": "background",
                "waves": "t1",
                "text": {"en": "Age"},
                "number": {"min": 16, "max": 99},
                "bins": AGE_BINS,
                # 77 and 98 are ages: the question has its own code, as studies do.
                "missing": {998: "refused"},
            },
        ],
    }


def panel_csv(seed: int = 14) -> str:
    """The study's wide file: one row per respondent, codes as the study wrote them."""
    rng = np.random.default_rng(seed)
    party = rng.choice([1, 2, 3], N, p=[0.4, 0.4, 0.2])
    lean = np.select([party == 1, party == 2], [2.0, -2.0], 0.0)
    columns: dict[str, Any] = {"participant": [f"R{i:04d}" for i in range(1, N + 1)]}
    columns["completed_at"] = ["2024-05-01T12:00:00+00:00"] * N
    no_t2 = rng.random(N) < 0.12
    for j, key in enumerate(["Q1", *PROPOSALS]):
        base = 5 + lean * (1 if j % 2 else -1) * rng.uniform(0.3, 1) + rng.normal(0, 2, N)
        # Deliberation moves everyone a little towards the middle, parties more so.
        after = base + 0.5 * (5 - base) * rng.uniform(0, 1, N) + rng.normal(0, 1, N)
        for wave, values in ((1, base), (2, after)):
            cells = np.clip(np.rint(values), 0, 10).astype(int).astype(object)
            draw = rng.random(N)
            cells[draw < 0.04] = 77
            cells[(draw >= 0.04) & (draw < 0.06)] = 98
            cells[(draw >= 0.06) & (draw < 0.08)] = -8
            if wave == 2:
                cells[no_t2] = ""
            columns[f"{key}_t{wave}"] = cells
    columns["PARTY_t1"] = party
    age = rng.integers(18, 90, N).astype(object)
    age[:3] = 998  # three refused their age: a hidden breakdown cell of their own
    columns["AGE_t1"] = age
    return pd.DataFrame(columns).to_csv(index=False)


# -- the independent computation: pandas and scipy only -------------------------------------


def kinds(column: pd.Series, codes: dict[int, str] = CODES) -> pd.Series:
    """'' (no answer), 'dk', 'refused', 'skipped' or 'valid' per respondent."""
    numbers = pd.to_numeric(column, errors="coerce")
    kind = numbers.map(codes).where(numbers.notna(), "")
    return kind.fillna("valid")


def substantive(column: pd.Series, codes: dict[int, str] = CODES) -> pd.Series:
    numbers = pd.to_numeric(column, errors="coerce")
    return numbers.where(kinds(column, codes) == "valid")


def side(values: pd.Series) -> pd.Series:
    return pd.Series(
        np.select([values < 5, values == 5, values > 5], ["oppose", "neutral", "support"], ""),
        index=values.index,
    )


def shares(column: pd.Series, among: pd.Index | None = None) -> dict[str, float]:
    """Percent of each side and missing kind over all answers, and of each side over the
    substantive answers only (of everyone, or of the respondents ``among``)."""
    kind = kinds(column)
    if among is not None:
        kind = kind[among]
    asked = kind[kind != ""]
    sides = side(substantive(column))[asked.index]
    labels = sides.where(asked == "valid", asked)
    out = {name: 100 * float((labels == name).mean()) for name in ("oppose", "neutral", "support")}
    out.update({name: 100 * float((asked == name).mean()) for name in ("dk", "refused", "skipped")})
    valid = sides[asked == "valid"]
    out.update(
        {f"{n}_valid": 100 * float((valid == n).mean()) for n in ("oppose", "neutral", "support")}
    )
    return out


def holm(p: pd.Series) -> pd.Series:
    """Holm's step-down adjustment written out (scipy has none)."""
    order = p.sort_values(kind="stable")
    factors = np.arange(len(order), 0, -1)
    adjusted = np.minimum(np.maximum.accumulate(order.to_numpy() * factors), 1.0)
    return pd.Series(adjusted, index=order.index).reindex(p.index)


def test_a_published_panel_imports_and_reproduces_scipy_from_the_same_file(tmp_path: Path):
    poll, _ = save_poll(data=validate(panel_definition(), "<test>"), source="<test>")
    content = panel_csv()
    import_responses(poll=poll, stream=io.BytesIO(content.encode()), recompute=lambda pk: None)
    payload = recompute_poll(poll.pk).payload
    frame = pd.read_csv(io.StringIO(content), dtype=str, keep_default_na=False)

    whole = {
        row["item"]: row
        for row in payload["items"]
        if row["arm"] == "all" and row["subgroup"] == "" and not row["weighted"]
    }
    assert set(whole) == {"Q1", *PROPOSALS}
    expected_p: dict[str, float] = {}
    populations = []
    for key, row in whole.items():
        pairs = pd.concat(
            [substantive(frame[f"{key}_t1"]), substantive(frame[f"{key}_t2"])], axis=1
        ).dropna()
        for wave in (1, 2):
            # A wave's shares describe its answerers, or the complete pairs where a small group
            # answered outside them somewhere (complementary suppression; labelled in the row).
            population = row[f"population_t{wave}"]
            populations.append(population)
            among = pairs.index if population == tables.PAIRS else None
            for name, value in shares(frame[f"{key}_t{wave}"], among).items():
                side, _, valid = name.partition("_")
                column = f"pct_{side}_valid_t{wave}" if valid else f"pct_{name}_t{wave}"
                assert math.isclose(row[column], value, abs_tol=1e-9), (key, column)
        test = sps.ttest_rel(pairs.iloc[:, 1], pairs.iloc[:, 0])
        assert row["n_pairs"] == len(pairs)
        assert math.isclose(row["mean_t1"], pairs.iloc[:, 0].mean(), rel_tol=1e-9)
        assert math.isclose(row["mean_t2"], pairs.iloc[:, 1].mean(), rel_tol=1e-9)
        assert math.isclose(row["p_t"], float(test.pvalue), rel_tol=1e-9)
        expected_p[key] = float(test.pvalue)

    assert populations.count(tables.ANSWERED) > len(populations) / 2
    # Holm and BH within families: Q1 alone in its own, the 48 proposals together.
    assert whole["Q1"]["family"] == "democracy"
    assert math.isclose(whole["Q1"]["p_holm"], expected_p["Q1"], rel_tol=1e-9)
    proposals = pd.Series({key: expected_p[key] for key in PROPOSALS})
    bh = pd.Series(sps.false_discovery_control(proposals.to_numpy()), index=proposals.index)
    for key, p_holm in holm(proposals).items():
        assert whole[key]["family"] == tables.OPTIONS_FAMILY
        assert math.isclose(whole[key]["p_holm"], p_holm, rel_tol=1e-9)
        assert math.isclose(whole[key]["p_bh"], bh[key], rel_tol=1e-9)

    # The party gap on each proposal: Welch's test of change scores, Democrats vs Republicans.
    party = pd.to_numeric(substantive(frame["PARTY_t1"]), errors="coerce")
    gaps = {
        row["item"]: row
        for row in payload["gaps"]
        if row["subgroup"] == "PARTY" and (row["value_a"], row["value_b"]) == tuple(PARTIES[:2])
    }
    assert set(gaps) == {"Q1", *PROPOSALS}
    for key, row in gaps.items():
        t1, t2 = substantive(frame[f"{key}_t1"]), substantive(frame[f"{key}_t2"])
        change = (t2 - t1).dropna()
        a, b = change[party[change.index] == 1], change[party[change.index] == 2]
        test = sps.ttest_ind(a, b, equal_var=False)
        interval = test.confidence_interval(0.95)
        assert (row["arm"], row["n_a"], row["n_b"]) == ("all", len(a), len(b))
        gap1 = t1[a.index].mean() - t1[b.index].mean()
        gap2 = t2[a.index].mean() - t2[b.index].mean()
        assert math.isclose(row["gap_t1"], gap1, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(row["gap_change"], abs(gap2) - abs(gap1), rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(row["p_welch"], float(test.pvalue), rel_tol=1e-9)
        assert math.isclose(row["ci_low"], float(interval.low), rel_tol=1e-9)
        assert math.isclose(row["ci_high"], float(interval.high), rel_tol=1e-9)
        assert row["test"] == tables.WELCH_TEST

    # The age breakdown through the declared bins: complete pairs per range.
    age = substantive(frame["AGE_t1"], {998: "refused"})
    ranges = pd.cut(age, [-np.inf, *AGE_BINS, np.inf], right=False, labels=False)
    labels = ["<18", "18-29", "30-44", "45-64", "65+"]
    by_age = {
        row["subgroup_value"]: row
        for row in payload["items"]
        if row["item"] == "Q2A" and row["subgroup"] == "AGE" and row["arm"] == "all"
    }
    pairs = pd.concat([substantive(frame["Q2A_t1"]), substantive(frame["Q2A_t2"])], axis=1)
    complete = pairs.dropna().index
    suppressed = {
        (c["arm"], c["subgroup"], c["subgroup_value"]) for c in payload["meta"]["suppressed"]
    }
    assert len(by_age) >= 3
    for code, label in enumerate(labels):
        n = int((ranges[complete] == code).sum())
        if label in by_age:
            assert by_age[label]["n_pairs"] == n
        else:
            # Under the minimum, or withheld beside the three who refused their age.
            assert n < K or ("all", "AGE", label) in suppressed

    # Exported as SPSS and Stata and read back: every kind survives, as the study coded it.
    write_sav(poll, tmp_path / "panel.sav")
    write_dta(poll, tmp_path / "panel.dta")
    sav, _ = pyreadstat.read_sav(str(tmp_path / "panel.sav"), user_missing=True)
    dta, meta = pyreadstat.read_dta(str(tmp_path / "panel.dta"), user_missing=True)
    letters = {
        label.split(" (")[-1].rstrip(")"): letter
        for letter, label in meta.variable_value_labels["Q1_t1"].items()
        if isinstance(letter, str)
    }
    for column in ("Q1_t1", "Q3V_t2"):
        sent = kinds(frame[column])
        by_participant = sav.set_index("participant")[column]
        stata = dta.set_index("participant")[column]
        for code, kind in CODES.items():
            who = sent.index[sent == kind]
            ids = frame.loc[who, "participant"]
            assert (by_participant[ids] == code).all() and len(ids) > 0, (column, kind)
            assert (stata[ids] == letters[str(code)]).all(), (column, kind)
