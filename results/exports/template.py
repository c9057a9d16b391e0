"""The import template of a poll: the header row the import expects, and the codebook that says
what every column accepts (allowed values, choice codes, missing-value codes).

As a workbook (``.xlsx``: a ``responses`` sheet with the header row, a ``codebook`` sheet and a
``how to import`` sheet) or as the bare header row in CSV. Offered by ``importresponses
--template``, and by the API at ``GET .../import/?template=xlsx`` (or ``csv``).
"""

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from results.exports import cells
from results.exports.codebook import LIST_SEPARATOR, codebook_rows, wide_variables
from results.exports.imports import ID_LENGTH
from results.exports.writers import csv_line
from surveys.definition.spec import poll_spec
from surveys.models import Poll

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STEPS = """\
1. Fill in the sheet 'responses': one row per participant, under the header row as it is
   (columns may be left out, except participant; their order does not matter).
2. Each column's allowed values and codes are in the sheet 'codebook'. Choice questions take
   their 1-based codes; lists (multiple choice, rankings) are keys separated by '{sep}'.
   Missing-value codes are taken as they are; an empty cell (or NaN, NA, '.' in a numeric
   column) is no answer.
3. completed_at: the ISO 8601 time each participant finished (e.g. 2024-05-01T10:30:00Z).
   Rows with it empty are imported as incomplete and left out of the results; without the
   column every row is complete, stamped with the time of the import.
4. Save the sheet 'responses' as CSV (UTF-8) and check it without storing anything:
   manage.py importresponses {slug} FILE.csv --dry-run
   (or POST it to the API's import endpoint with dry_run=true). Then import it for real;
   --replace replaces the participants of this poll that have the same ids.
"""


def _design_allowed(name: str, poll: Poll, options: list[str]) -> str:
    keys = f"separated by '{LIST_SEPARATOR}'"
    positions = list(poll.positions.order_by("order", "id").values_list("key", flat=True))
    fixed = {
        "participant": "required: the participant's id as your data has it, once per file "
        f"(at most {ID_LENGTH} characters)",
        "arm": "treatment, control or empty",
        "group": "a whole number 0 or more, or empty",
        "position_order": f"position keys {cells.shortlist(positions) or '(none)'} {keys}",
        "option_order": f"option keys {cells.shortlist(options) or '(none)'} {keys}",
        "weight": "a positive number, or empty (unweighted)",
        "language": f"one of {', '.join(poll.languages)}; empty: {poll.languages[0]}",
        "imported": "ignored (every imported participant is marked imported)",
        "started_at": "an ISO 8601 date and time, e.g. 2024-05-01T10:30:00Z, or empty",
        "completed_at": "an ISO 8601 date and time, e.g. 2024-05-01T10:30:00Z; empty: "
        "incomplete, left out of the results",
        "flags": f"quality flags {keys}, or empty",
    }
    if name.startswith("seconds_"):
        return "seconds, a number 0 or more, or empty"
    return fixed.get(name, "")


def allowed_column(poll: Poll) -> dict[str, str]:
    """Variable name -> what its cells may hold, in words."""
    spec = poll_spec(poll)
    options = spec.option_keys()
    described = {}
    for variable in wide_variables(poll):
        if variable.item:
            described[variable.name] = cells.allowed(spec.by_key[variable.item], options)
        else:
            described[variable.name] = _design_allowed(variable.name, poll, options)
    return described


def header_csv(poll: Poll) -> bytes:
    return csv_line([v.name for v in wide_variables(poll)])


def workbook(poll: Poll) -> bytes:
    book = Workbook(write_only=True)
    bold = Font(bold=True)

    def heading(sheet: Any, names: list[str]) -> None:
        row = []
        for name in names:
            cell = WriteOnlyCell(sheet, value=name)
            cell.font = bold
            row.append(cell)
        sheet.append(row)

    responses = book.create_sheet("responses")
    responses.freeze_panes = "B2"
    heading(responses, [v.name for v in wide_variables(poll)])

    codebook = book.create_sheet("codebook")
    codebook.freeze_panes = "B2"
    rows = codebook_rows(poll)
    described = allowed_column(poll)
    columns = [*rows[0], "allowed"] if rows else []
    for index, name in enumerate(columns, 1):
        # Readable at a glance: the names, the label and what a cell may hold are wide.
        width = {"variable": 28, "label": 50, "allowed": 90}.get(name, 14)
        codebook.column_dimensions[get_column_letter(index)].width = width
    heading(codebook, columns)
    for row in rows:
        values = {**row, "allowed": described.get(row["variable"], row.get("notes", ""))}
        codebook.append([_plain(values.get(column, "")) for column in columns])

    how = book.create_sheet("how to import")
    how.column_dimensions["A"].width = 100
    for line in STEPS.format(slug=poll.slug, sep=LIST_SEPARATOR).splitlines():
        how.append([line])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _plain(value: Any) -> Any:
    # A cell a spreadsheet would run as a formula is written as text (as in the CSV exports).
    if isinstance(value, str) and value.startswith(("=", "+", "@")):
        return f"'{value}"
    return value
