"""CSV for results tables: the same columns as the JSON, written as the data package writes them."""

from typing import Any

from rest_framework.renderers import BaseRenderer

from results.exports.writers import table_csv


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
        return table_csv(data["rows"], data["columns"])
