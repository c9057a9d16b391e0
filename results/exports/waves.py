"""The per-wave layout: one row per participant and wave, the layout the Stanford Deliberative
Democracy Lab's analysis package (``DeliberativePolling`` on PyPI, ``outputs("poll.sav")``) reads
unchanged.

Columns: ``ID`` (the pseudonymous id), ``Group`` (1 Treatment, 2 Control), ``Time`` (1 Before,
2 After), ``weight`` (only when the poll has weights) and one variable per rating, single choice,
knowledge or number question under its own key, with no wave suffix. A paired item holds the T1
answer on the Before row and the T2 answer on the After row; a T1-only (background) question is
repeated on both rows, so the package can break every wave down by it; a T2-only question
(evaluations) is on the After row only, since it was not asked before. Multiple choice, ranking
and text answers are not numbers the package can use; they stay in the wide and long exports.

Who gets a row, and why (the package's own rules, read from its source, version 1.4.2):

- The participants our results describe (``results.compute.loading``): those who completed the
  poll (imported ones included when the import marks them completed), so the package's figures
  and ours are about the same people. Participants still in progress, or who left online before
  the end, are in the wide and long exports only.
- Only participants assigned to an arm: the package refuses an empty ``Group`` and compares
  groups wave by wave, and a group with no After rows stops it ("No shared IDs").
- A participant gets a row for each wave at which they have at least one answer (of any kind,
  don't know and the other missing kinds included). Someone who never reached T2 has no After
  row. The package pairs the Before and After rows by ``ID`` and computes paired means and tests
  over the IDs with a value at both (complete pairs, as our results do), so an empty After row
  would change none of them; it would only inflate the package's "n =" (the rows of the arm at
  that wave) and count the drop-outs as DK/NA in its After percentages. Without it, its n is
  the number who answered at that wave, as our ``n_t1``/``n_t2`` are where everyone at a wave
  answered the item. (Having completed, such a participant comes from an import of a panel
  with attrition: an import marks its rows completed unless told otherwise.)

Missing answers keep their codes and are declared SPSS user-missing (``statfiles.spss_missing``),
so the package, which reads the file with pyreadstat's defaults, sees them as empty: DK/NA,
outside every mean. Their codes carry no value label in the .sav: the package lists every
labelled value as an answer category and would show a "Don't know" row at 0% beside the DK/NA
row that actually counts them (the codebook, and the Stata file's extended missing values, name
the kinds). Every value the package may read has a label: the package stops at an unlabelled
one, so every point of a rating scale is labelled (its ends with their wording). The package
also takes every scale variable whose name holds "weight" as a survey weight, so a number
question so named is written with "wgt" instead (``body_weight`` as ``body_wgt``).
"""

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from results.exports import codebook
from results.exports.codebook import (
    MEASURE,
    Variable,
    stata_names,
)
from results.exports.statfiles import dta_file, sav_file, undeclared_codes
from results.exports.writers import neutralise, table_csv, wide_frame
from surveys.definition.spec import poll_spec
from surveys.models import Participant, Poll, Question, localized

Progress = Callable[[float, str], None]
WAVE_KINDS = (
    Question.Kind.RATING,
    Question.Kind.SINGLE,
    Question.Kind.KNOWLEDGE,
    Question.Kind.NUMBER,
)
GROUP_CODES = {Participant.Arm.TREATMENT.value: 1, Participant.Arm.CONTROL.value: 2}
GROUP_LABELS = {1: "Treatment", 2: "Control"}
TIME_LABELS = {1: "Before", 2: "After"}
DESIGN_NAMES = ("ID", "Group", "Time", "weight")
# The package names its output folders and files after the labels of nominal variables; a long
# label makes a file name over the 255 bytes a file system allows.
NOMINAL_LABEL_BYTES = 80
CHUNK_ROWS = 2000
WAVES_FORMATS = ("csv-waves", "sav-waves", "dta-waves")

WEIGHT_NOTE = (
    "Survey weight (empty: none). The lab's package takes any scale variable whose name "
    "contains 'weight' as a weight and treats it as frequencies: its weighted paired t-test is "
    "DescrStatsW(d, weights=w).ttest_mean(0) on the weights as written, so its degrees of "
    "freedom are S - 1 (S: the sum of the weights of the item's complete pairs) where our "
    "results normalise the weights to mean 1 over those pairs (n - 1 degrees of freedom). "
    "Weighted means are the same; the package's weighted t equals ours times "
    "sqrt((S - 1)/(n - 1)), so its weighted p-values differ unless the weights average 1 over "
    "the pairs. Unweighted figures are the same in both."
)
METHOD_NOTES = (
    "How the lab's DeliberativePolling package's figures compare with our results tables "
    "(the file holds the participants they describe: completed, in an arm). "
    "Paired means and p-values (same group, Before v. After, unweighted) are ours: means at T1 "
    "and T2 over complete pairs (mean_t1, mean_t2) and the paired t-test (p_t), printed to "
    "three decimals. Its 'n =' counts the rows of the group at that wave (participants who "
    "answered anything at that wave): our n_t1/n_t2 where everyone at the wave answered the "
    "item, not n_pairs, which it does not print. Its percentages are over those rows, DK/NA "
    "holding don't know, refused, skipped, not asked and no answer; our pct_* are over those "
    "who answered the item (not asked left out). Between groups it runs Welch's t-test on the "
    "levels at each wave, not our difference in differences (Welch on the change scores). "
    "It applies no small-cell rule: its tables show what our results withhold or publish over "
    "the pairs (population_t1/population_t2 'pairs', n_t = n_pairs), as any analysis of these "
    "microdata can. " + WEIGHT_NOTE.split(". ", 1)[1]
)


class NoPairedItems(ValueError):
    """The poll has no item the per-wave layout can pair (400 in the API)."""


@dataclass(frozen=True)
class WaveItem:
    variable: Variable
    before: str  # the wide column on the Before row ("" when not asked before)
    after: str  # the wide column on the After row


def wave_questions(poll: Poll) -> list[Question]:
    return [q for q in codebook.poll_questions(poll) if q.kind in WAVE_KINDS]


def check_paired(poll: Poll, fmt: str = "") -> None:
    """Raise NoPairedItems unless the poll has a question the layout pairs over the waves and,
    for ``sav-waves`` (the file for the lab's package), the variables that package stops
    without: an ordinal one (a rating) and a nominal one besides ID, Group and Time."""
    if not any(q.paired for q in wave_questions(poll)):
        raise NoPairedItems(
            "The per-wave formats (csv-waves, sav-waves, dta-waves) need at least one item "
            "asked at both T1 and T2 (a rating, single choice, knowledge or number question); "
            f"poll '{poll.slug}' has none. Use csv-wide, sav or dta."
        )
    if fmt != "sav-waves":
        return
    measures = {item.variable.measure for item in wave_items(poll)}
    needed = {"ordinal": "a rating question", "nominal": "a single choice or knowledge question"}
    lacking = [what for measure, what in needed.items() if measure not in measures]
    if lacking:
        raise NoPairedItems(
            "sav-waves is laid out for the Stanford lab's DeliberativePolling package, which "
            f"stops without {' and '.join(lacking)} (its ordinal and nominal variables); poll "
            f"'{poll.slug}' has none. Use csv-waves or dta-waves for the same layout."
        )


def short_label(text: str, limit: int = NOMINAL_LABEL_BYTES) -> str:
    """``text`` cut to ``limit`` bytes of UTF-8 at a word, with '...' when cut."""
    if len(text.encode()) <= limit:
        return text
    cut = text.encode()[: limit - 3].decode(errors="ignore")
    return cut.rsplit(" ", 1)[0].rstrip(" ,;:") + "..."


def unique_label(variable: Variable, taken: set[str]) -> str:
    """A nominal variable's label as the lab's package can use it: it names its output folders
    and files after these labels, so a "/" would split a folder in two and two labels cut to
    the same 80 bytes would overwrite each other's tables. A repeated label gets the
    variable's name."""
    label = variable.label.replace("/", "-")
    if label.casefold() in taken:
        suffix = f" ({variable.name})"
        label = short_label(label, NOMINAL_LABEL_BYTES - len(suffix.encode())) + suffix
    taken.add(label.casefold())
    return label


def item_name(key: str, taken: set[str]) -> str:
    """The question key, unless SPSS (names are case-insensitive) would confuse it with a design
    variable or another item: then ``<key>_q``, ``<key>_q2``, ..."""
    name, number = key, 1
    while name.casefold() in taken:
        number += 1
        name = f"{key}_q" if number == 2 else f"{key}_q{number - 1}"
    taken.add(name.casefold())
    return name


def item_variable(question: Question, wide: Variable, name: str) -> Variable:
    """The wide T1/T2 variable as the per-wave one: no wave in its name or label, every answer
    value labelled, no label on the missing codes (see the module's docstring)."""
    labels = {code: text for code, text in wide.value_labels.items() if code not in wide.missing}
    if question.kind == Question.Kind.RATING:
        labels = {
            point: labels.get(point, str(point))
            for point in range(question.scale_min, question.scale_max + 1)
        }
    text = localized(question.text, "en")
    measure = MEASURE[Question.Kind(question.kind)]
    label = short_label(text) if measure == "nominal" else text[:250]
    waves = "T1 and T2" if question.paired else "T1 only" if question.in_wave(1) else "T2 only"
    return replace(wide, name=name, label=label, wave=None, value_labels=labels, notes=waves)


def wave_items(poll: Poll) -> list[WaveItem]:
    wide = {(v.item, v.wave): v for v in codebook.wide_variables(poll) if v.item}
    taken = {name.casefold() for name in DESIGN_NAMES}
    labels_taken: set[str] = set()
    items = []
    for question in wave_questions(poll):
        key = question.key
        first = wide[(key, 1)] if question.in_wave(1) else wide[(key, 2)]
        name = key
        if question.kind == Question.Kind.NUMBER:
            # The package takes every scale variable named with "weight" as a survey weight.
            name = re.sub("weight", "wgt", key, flags=re.IGNORECASE)
        variable = item_variable(question, first, item_name(name, taken))
        if variable.measure == "nominal":
            variable = replace(variable, label=unique_label(variable, labels_taken))
        before = f"{key}_t1" if question.in_wave(1) else ""
        # A T1-only (background) question describes the participant at both waves.
        after = f"{key}_t2" if question.in_wave(2) else f"{key}_t1"
        items.append(WaveItem(variable, before, after))
    return items


def design_variables(weighted: bool) -> list[Variable]:
    variables = [
        Variable("ID", "Pseudonymous participant id", "string", "nominal"),
        Variable(
            "Group",
            "Experimental arm",
            "integer",
            "nominal",
            value_labels=GROUP_LABELS,
            notes="1 treatment (deliberated), 2 control. Rows: participants who completed the "
            "poll and were assigned to an arm, as in the results.",
        ),
        Variable(
            "Time",
            "Wave",
            "integer",
            "nominal",
            value_labels=TIME_LABELS,
            notes="1 before (T1), 2 after (T2). A row per wave with at least one answer.",
        ),
    ]
    if weighted:
        variables.append(Variable("weight", "Survey weight", "number", "scale", notes=WEIGHT_NOTE))
    return variables


def waves_frame(
    poll: Poll, *, progress: Progress | None = None
) -> tuple[pd.DataFrame, list[Variable]]:
    """The per-wave table (typed: nullable integers, floats, strings) and its variables."""
    check_paired(poll)
    wide, wide_vars = wide_frame(poll, progress=progress)
    items = wave_items(poll)
    wide = wide[wide["arm"].isin(list(GROUP_CODES)) & wide["completed_at"].notna()]
    group = wide["arm"].astype(object).map(GROUP_CODES)
    weighted = bool(wide["weight"].notna().any())
    variables = design_variables(weighted) + [item.variable for item in items]
    answered = {
        wave: wide[[v.name for v in wide_vars if v.wave == wave]].notna().any(axis=1)
        for wave in (1, 2)
    }
    parts = []
    for wave in (1, 2):
        rows = wide[answered[wave]]
        part = pd.DataFrame(
            {
                "ID": rows["participant"].astype("string"),
                "Group": pd.array(group[answered[wave]], dtype="Int64"),
                "Time": pd.array([wave] * len(rows), dtype="Int64"),
            },
            index=rows.index,
        )
        if weighted:
            part["weight"] = rows["weight"].astype("float64")
        for item in items:
            column = item.before if wave == 1 else item.after
            kind = item.variable.kind
            values = rows[column] if column else pd.Series(pd.NA, index=rows.index)
            part[item.variable.name] = (
                pd.to_numeric(values).astype("float64")
                if kind == Question.Kind.NUMBER
                else pd.array(values, dtype="Int64")
            )
        parts.append(part)
    # Grouped by arm, each participant's Before row just above their After row: the package
    # names its comparisons in the order it first meets the groups and waves (Treatment first,
    # Before v. After, differences After - Before).
    frame = pd.concat(parts).reset_index(names="_participant")
    frame = frame.sort_values(["Group", "_participant", "Time"], kind="stable")
    frame = frame.drop(columns=["_participant"]).reset_index(drop=True)
    variables = [undeclared_codes(v, frame[v.name]) for v in variables]
    if progress:
        progress(0.7, f"{len(frame)} participant-wave rows")
    return frame, variables


# --- writers ----------------------------------------------------------------------------------


def csv_chunks(poll: Poll) -> Iterator[bytes]:
    """The per-wave table as CSV, codes as in the .sav (labels in the codebook)."""
    yield from frame_csv_chunks(waves_frame(poll)[0])


def frame_csv_chunks(frame: pd.DataFrame) -> Iterator[bytes]:
    frame = frame.copy()
    frame["ID"] = frame["ID"].map(neutralise)
    for start in range(0, max(len(frame), 1), CHUNK_ROWS):
        chunk = frame.iloc[start : start + CHUNK_ROWS]
        yield chunk.to_csv(index=False, header=start == 0, lineterminator="\n").encode()


def write_csv(poll: Poll, path: Path, *, progress: Progress | None = None) -> None:
    with path.open("wb") as target:
        for chunk in csv_chunks(poll):
            target.write(chunk)


def write_sav(poll: Poll, path: Path, *, progress: Progress | None = None) -> None:
    frame, variables = waves_frame(poll, progress=progress)
    sav_file(frame, variables, path, f"Deliberate poll {poll.slug}, one row per wave")


def write_dta(poll: Poll, path: Path, *, progress: Progress | None = None) -> None:
    """Stata: missing codes as extended missing values (.a don't know, ...), labelled with the
    kind, as the wide file has them."""
    frame, variables = waves_frame(poll, progress=progress)
    dta_file(frame, variables, path, f"Deliberate poll {poll.slug}, one row per wave")


WRITERS: dict[str, Callable[..., None]] = {
    "csv-waves": write_csv,
    "sav-waves": write_sav,
    "dta-waves": write_dta,
}


# --- codebook and data package ----------------------------------------------------------------


def variables_of(poll: Poll) -> list[Variable]:
    """The layout's variables (``weight`` when any assigned participant has one)."""
    weighted = (
        Participant.objects.filter(poll=poll, arm__in=list(GROUP_CODES), weight__isnull=False)
        .completed()
        .exists()
    )
    return design_variables(weighted) + [item.variable for item in wave_items(poll)]


def codebook_rows(poll: Poll) -> list[dict[str, Any]]:
    """The codebook of the per-wave files, one row per variable, with how the lab package's
    figures compare with ours (the ``notes`` of the design variables)."""
    spec = poll_spec(poll)
    rows = []
    variables = variables_of(poll)
    stata = stata_names([v.name for v in variables])
    for v in variables:
        question = spec.by_key.get(v.item)
        rows.append(
            {
                "variable": v.name,
                "stata_name": stata[v.name],
                "item": v.item,
                "kind": v.kind,
                "type": v.type,
                "measure": v.measure,
                "label": v.label,
                "value_labels": json.dumps(v.value_labels, ensure_ascii=False)
                if v.value_labels
                else "",
                "missing_codes": codebook.LIST_SEPARATOR.join(
                    f"{code}={kind}" for code, kind in v.missing_kinds.items()
                ),
                "answer_key": v.answer_key,
                "waves": v.notes if question else "",
                "notes": "" if question else v.notes,
            }
        )
    # Not a variable: the row that says how the lab package's figures compare with ours.
    rows.append({"variable": "(method)", "notes": METHOD_NOTES})
    return rows


def package_resources(poll: Poll) -> list[dict[str, Any]]:
    """The data package's description of the per-wave CSV (none for a poll without pairs)."""
    try:
        check_paired(poll)
    except NoPairedItems:
        return []
    return [
        {
            "name": "answers-waves",
            "path": "waves/answers.csv",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "description": METHOD_NOTES,
            "schema": codebook.table_schema(variables_of(poll)),
        },
        {"name": "answers-waves-spss", "path": "waves/answers.sav", "format": "sav"},
        {"name": "codebook-waves", "path": "waves/codebook.csv", "format": "csv"},
    ]


def package_files(poll: Poll, folder: Path) -> Iterator[tuple[str, Path | bytes]]:
    """The per-wave files of the data package (archive name, file or content)."""
    try:
        check_paired(poll)
    except NoPairedItems:
        return
    frame, variables = waves_frame(poll)
    sav = folder / "answers_waves.sav"
    sav_file(frame, variables, sav, f"Deliberate poll {poll.slug}, one row per wave")
    yield "waves/answers.sav", sav
    yield "waves/answers.csv", b"".join(frame_csv_chunks(frame))
    yield "waves/codebook.csv", codebook_csv(poll)


def codebook_csv(poll: Poll) -> bytes:
    rows = codebook_rows(poll)
    return table_csv(rows, list(rows[0]))
