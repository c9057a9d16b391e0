"""The wide table as SPSS (.sav) and Stata (.dta) files, with labels and missing values.

Missing answers keep their kind in both: SPSS declares the codes user-missing (up to three
discrete values, or a range and one value, SPSS's own limit), Stata writes extended missing
values, one letter per kind (.a don't know, .b refused, .c skipped, .d not asked), labelled with
the kind and the code. Whole-number variables are shown without decimals; names longer than
Stata's 32 characters are shortened as the codebook's ``stata_name`` says.
"""

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat

from results.exports.codebook import FALLBACK_CODES, MISSING_LABELS, Variable, stata_names
from results.exports.writers import wide_frame
from surveys.models import Poll, Question

Progress = Callable[[float, str], None]
STATA_LETTERS = {"dont_know": "a", "refused": "b", "skipped": "c", "not_asked": "d"}
SPSS_DISCRETE = 3  # SPSS declares at most three discrete missing values per variable


def stats_frame(frame: pd.DataFrame, variables: list[Variable]) -> pd.DataFrame:
    """SPSS and Stata take float columns for numbers with gaps and naive UTC datetimes."""
    columns: dict[str, pd.Series] = {}
    for v in variables:
        column = frame[v.name]
        if v.numeric:
            columns[v.name] = column.astype("float64")
        elif v.type == "datetime":
            columns[v.name] = column.dt.tz_convert("UTC").dt.tz_localize(None)
        else:
            columns[v.name] = column.astype(object).where(column.notna(), "")
    # Built at once: a column at a time fragments the frame (pandas' PerformanceWarning).
    return pd.DataFrame(columns, index=frame.index)


def spss_missing(variable: Variable) -> list[Any]:
    """The variable's missing codes as SPSS declares them: discrete values, or (over three
    codes) one range that holds no substantive value plus one discrete value; failing that,
    the three lowest codes (the codebook still lists them all)."""
    codes = sorted(variable.missing_kinds)
    if len(codes) <= SPSS_DISCRETE:
        return codes
    valid = _valid_values(variable)
    for single in codes:
        rest = [code for code in codes if code != single]
        low, high = rest[0], rest[-1]
        if not any(low <= value <= high for value in valid):
            return [{"lo": low, "hi": high}, single]
    return codes[:SPSS_DISCRETE]


def _valid_values(variable: Variable) -> list[float]:
    labelled = [code for code in variable.value_labels if code not in variable.missing_kinds]
    if variable.kind == Question.Kind.NUMBER:
        return [float("-inf"), float("inf")]  # any number may be an answer
    return labelled or [float("-inf"), float("inf")]


def spss_format(variable: Variable) -> str | None:
    return "F8.0" if variable.type == "integer" else None


def undeclared_codes(variable: Variable, column: pd.Series) -> Variable:
    """The variable with the fallback codes its answers hold (a missing kind its question
    declares no code for, written as ``FALLBACK_CODES`` give it) declared missing too: else
    SPSS shows -99 as an answer and Stata as a number (and the Stanford lab's package, meeting
    an unlabelled -99, stops). Never for numbers, where -99 may be an answer."""
    if not variable.item or variable.kind == Question.Kind.NUMBER:
        return variable
    present = set(column.dropna().tolist())
    extra = {
        code: kind
        for kind, code in FALLBACK_CODES.items()
        if code in present and code not in variable.missing_kinds
    }
    if not extra:
        return variable
    kinds = dict(sorted({**variable.missing_kinds, **extra}.items()))
    return replace(variable, missing_kinds=kinds, missing=list(kinds))


def sav_file(frame: pd.DataFrame, variables: list[Variable], path: Path, label: str) -> None:
    """``frame`` as an SPSS file: a label on every variable (the lab's package needs them),
    value labels, measure levels and the missing codes declared user-missing."""
    variables = [undeclared_codes(v, frame[v.name]) for v in variables]
    pyreadstat.write_sav(
        stats_frame(frame, variables),
        str(path),
        file_label=label[:64],
        column_labels={v.name: v.label for v in variables},
        variable_value_labels={v.name: v.value_labels for v in variables if v.value_labels},
        missing_ranges={
            v.name: spss_missing(v) for v in variables if v.missing_kinds and v.numeric
        },
        variable_measure={v.name: v.measure for v in variables},
        variable_format={v.name: f for v in variables if (f := spss_format(v))},
        compress=True,
    )


def dta_file(frame: pd.DataFrame, variables: list[Variable], path: Path, label: str) -> None:
    """``frame`` as a Stata file: missing codes as extended missing values, one letter per
    kind, labelled with the kind and the code; names shortened as ``stata_names`` says."""
    variables = [undeclared_codes(v, frame[v.name]) for v in variables]
    data = stats_frame(frame, variables)
    value_labels: dict[str, dict[Any, str]] = {}
    missing: dict[str, list[str]] = {}
    for v in variables:
        labels: dict[Any, str] = dict(v.value_labels)
        if v.numeric and v.missing_kinds:
            column = data[v.name].astype(object)
            letters: dict[str, str] = {}
            for code, kind in v.missing_kinds.items():
                letter = STATA_LETTERS[kind]
                column = column.where(data[v.name] != code, letter)
                labels.pop(code, None)
                # Several codes of one kind share its letter; the label names the first.
                letters.setdefault(letter, f"{MISSING_LABELS[kind]} ({code})")
            data[v.name] = column
            labels.update(letters)
            missing[v.name] = sorted(letters)
        if labels:
            value_labels[v.name] = labels
    short = stata_names([v.name for v in variables])
    pyreadstat.write_dta(
        data.rename(columns=short),
        str(path),
        file_label=label[:80],
        column_labels={short[v.name]: v.label[:80] for v in variables},
        variable_value_labels={short[name]: labels for name, labels in value_labels.items()},
        missing_user_values={short[name]: letters for name, letters in missing.items()},
    )


def write_sav(poll: Poll, path: Path, *, progress: Progress | None = None) -> None:
    frame, variables = wide_frame(poll, progress=progress)
    sav_file(frame, variables, path, f"Deliberate poll {poll.slug}")


def write_dta(poll: Poll, path: Path, *, progress: Progress | None = None) -> None:
    frame, variables = wide_frame(poll, progress=progress)
    dta_file(frame, variables, path, f"Deliberate poll {poll.slug}")
