"""The results tables' contract (``results.tables``) as researchers meet it: the same columns,
in the documented order, in the API's JSON and CSV, the data package and the API schema."""

import io
import json
import zipfile

import pytest
from django.urls import reverse

from tests.results.test_exports import export

pytestmark = pytest.mark.django_db


def test_the_knowledge_table_has_its_documented_columns_in_the_api_and_the_package(
    researcher, poll, snapshot
):
    """The knowledge table was left out of the list of flat tables: the API and the package's
    knowledge.csv put its columns in the order jsonb stores keys (by length), not the
    documented one, and datapackage.json did not describe the file the package ships."""
    from results import tables

    documented = list(tables.KNOWLEDGE)
    url = reverse("api:results-knowledge", kwargs={"slug": poll.slug})
    served = researcher.get(url).json()
    assert served["columns"] == documented
    assert [list(row) for row in served["rows"]] == [documented]
    csv = researcher.get(url, {"format": "csv"}).content
    assert csv.decode().splitlines()[0].split(",") == documented
    _, body = export(researcher, poll, "package")
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.read("results/knowledge.csv") == csv
        described = json.loads(archive.read("datapackage.json"))
    resource = next(r for r in described["resources"] if r["name"] == "results-knowledge")
    assert [field["name"] for field in resource["schema"]["fields"]] == documented


def test_the_api_schema_types_the_population_columns_as_text(researcher):
    schema = researcher.get("/api/schema/", {"format": "json"}).json()
    for row in ("ItemsRow", "KnowledgeRow"):
        properties = schema["components"]["schemas"][row]["properties"]
        assert properties["population_t1"]["type"] == "string", row
        assert properties["population_t2"]["type"] == "string", row
