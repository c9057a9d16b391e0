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

from results.exports import cells
from results.exports.codebook import LIST_SEPARATOR, codebook_rows, wide_variables
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


def allowed_column(poll: Poll) -> dict[str, str]:
    """Variable name -> what its cells may hold, in words."""
    spec = poll_spec(poll)
    options = spec.option_keys()
    described = {}
    for variable in wide_variables(poll):
        if variable.item:
            described[variable.name] = cells.allowed(spec.by_key[variable.item], options)
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
    heading(codebook, columns)
    for row in rows:
        values = {**row, "allowed": described.get(row["variable"], row.get("notes", ""))}
        codebook.append([_plain(values.get(column, "")) for column in columns])

    how = book.create_sheet("how to import")
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
