"""CSV for results tables: the same columns as the JSON, numbers plain, text neutralised."""

import csv
import io
from typing import Any

from rest_framework.renderers import BaseRenderer

from results.exports.package import csv_value


class TableCSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        columns = data["columns"]
        writer.writerow(columns)
        for row in data["rows"]:
            writer.writerow([csv_value(row.get(column)) for column in columns])
        return buffer.getvalue().encode()
