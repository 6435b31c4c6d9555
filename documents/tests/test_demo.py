import pytest

from documents import demo
from documents.models import Document
from documents.search import search_workspace
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def test_demo_documents_are_ingested_once_and_answer_questions(owner, run_tasks):
    workspace = Workspace.objects.create(name="Demo", slug="demo")
    with run_tasks():
        assert demo.populate(owner) == []
    documents = Document.objects.in_workspace(workspace)
    assert documents.count() == len(demo.FILES)
    assert {d.status for d in documents} == {"ready"}, [d.failure_reason for d in documents]
    assert documents.get(kind="pdf").page_count == 10
    demo.populate(owner)
    assert documents.count() == len(demo.FILES)

    vacation = search_workspace(workspace, "vacation days carry over")
    assert vacation[0].document.title == "Employee handbook 2026" and vacation[0].page == 3
    assert search_workspace(workspace, "VPN")[0].document.title == "IT FAQ"
    hotel = search_workspace(workspace, "hotel limit Lisbon")
    assert {r.document.title for r in hotel} >= {"Travel policy"}
    assert search_workspace(workspace, "parking garage")[0].document.title == "Office guide"
    assert "console" not in " ".join(documents.get(kind="html").chunks.values_list("text", flat=True))
    assert search_workspace(workspace, "mileage")
