"""[n] markers link to the cited passage; the passage shows what the answer quoted; each passage is cited once."""

from assistants import answering, citing
from assistants.models import Message
from documents.search import SearchResult

VACATION = "How many vacation days do I get?"


def test_markers_become_links_only_in_text():
    html = '<p>Yes "27 days" [1] and [3]. <a href="/x?[1]">[1]</a> <code>a[1]</code> [7]</p>'
    out = str(citing.link_markers(html, {1: "/s/1/", 3: "/s/3/"}))
    assert out.count('class="cite"') == 2
    assert 'href="/s/1/" data-cite="1"' in out and 'href="/s/3/" data-cite="3"' in out
    # Attributes, links, code and unknown numbers are left alone.
    assert '<a href="/x?[1]">[1]</a>' in out and "<code>a[1]</code>" in out and "[7]" in out


def test_quoted_parts_and_marking():
    answer = 'According to the passages:\n\n"Every employee gets 27 vacation days a year." [1]\n\n"Meals are paid." [2]'
    assert citing.quoted_parts(answer, 1) == ["Every employee gets 27 vacation days a year."]
    text = "## Vacation\n\nEvery employee gets 27 vacation\ndays a year. Unused days <expire>."
    html, found = citing.mark_passage(text, citing.quoted_parts(answer, 1))
    assert found
    assert "<mark>Every employee gets 27 vacation\ndays a year</mark>" in str(html)
    assert "&lt;expire&gt;" in str(html)  # the passage is escaped
    # A paraphrase: the sentence before the marker.
    assert citing.quoted_parts("You get 27 vacation days a year [1]. Ask HR.", 1) == ["You get 27 vacation days a year"]
    # Nothing quoted that the passage holds: the words the search marked.
    html, found = citing.mark_passage(text, ["something else entirely"], "Every <mark>employee</mark> gets")
    assert found and "<mark>employee</mark>" in str(html)


class _Doc:
    def __init__(self, pk):
        self.pk, self.title, self.content_version = pk, f"doc {pk}", 1

    @property
    def workspace(self):
        return type("W", (), {"slug": "acme"})()


def _result(chunk, doc, text):
    return SearchResult(_Doc(doc), chunk, 0, None, "", text, text, 1.0)


def test_each_passage_is_cited_once(assistant):
    results = [
        _result(1, 1, "Every employee gets 27 vacation days."),
        _result(1, 1, "Every employee gets 27 vacation days."),  # the same passage found twice
        _result(2, 2, "Every  employee gets 27 vacation days."),  # the same text in a copy of the document
        _result(3, 1, "Meals are reimbursed."),
    ]
    request, citations = answering.build_request(assistant, VACATION, results)
    assert [c["chunk_id"] for c in citations] == [1, 3]
    assert [c["n"] for c in citations] == [1, 2]
    assert request["messages"][-1]["content"].count("Every employee gets 27") == 1
    doubled = citations + [dict(citations[0], n=5)]
    assert [c["chunk_id"] for c in answering.cited("Yes [1] and [5].", doubled)] == [1]


def test_answer_markers_link_to_the_passage_with_the_quote_marked(
    client_for, member, assistant, ask_page, django_assert_num_queries
):
    client = client_for(member)
    events = ask_page(client, assistant, VACATION)
    done = [d for e, d in events if e == "done"][0]
    answer = Message.objects.get(pk=done["answer_id"])
    url = f"/assistants/acme/messages/{answer.pk}/sources/1/"
    assert f'href="{url}"' in done["html"] and 'class="cite"' in done["html"]
    page = client.get(answer.conversation.get_absolute_url()).content.decode()
    assert f'href="{url}"' in page

    panel = client.get(url, HTTP_HX_REQUEST="true")
    assert panel.status_code == 200
    html = panel.content.decode()
    assert "<mark>Every employee gets 27 vacation days a year</mark>" in html
    assert "<html" not in html  # a fragment for the side panel
    full = client.get(url).content.decode()
    assert "<html" in full and "Back to the conversation" in full and "<mark>" in full

    assert client.get(f"/assistants/acme/messages/{answer.pk}/sources/9/").status_code == 404
    # user, memberships, workspace, the answer (with its conversation), the documents' versions, the chunk
    with django_assert_num_queries(6):
        assert client.get(url, HTTP_HX_REQUEST="true").status_code == 200


def test_a_passage_gone_from_its_document_shows_what_was_quoted(client_for, member, assistant, ask_page, handbook):
    client = client_for(member)
    done = [d for e, d in ask_page(client, assistant, VACATION) if e == "done"][0]
    handbook.delete()
    html = client.get(f"/assistants/acme/messages/{done['answer_id']}/sources/1/").content.decode()
    assert "source deleted" in html and "no longer in the document" in html


def test_someone_elses_passage_link_is_404(client_for, member, admin_user, assistant, ask_page):
    done = [d for e, d in ask_page(client_for(member), assistant, VACATION) if e == "done"][0]
    url = f"/assistants/acme/messages/{done['answer_id']}/sources/1/"
    assert client_for(admin_user).get(url).status_code == 404


def test_every_sentence_before_a_marker_is_what_it_quotes():
    from assistants.citing import quoted_parts

    answer = "Staff get 25 days of paid holiday a year. Unused days expire in March [1]. The office opens at 8 am [2]."
    assert quoted_parts(answer, 1) == ["Staff get 25 days of paid holiday a year.", "Unused days expire in March"]
    assert quoted_parts(answer, 2) == ["The office opens at 8 am"]


def test_a_citation_does_not_repeat_the_title_as_its_section():
    from types import SimpleNamespace

    from assistants.answering import location_of

    document = SimpleNamespace(title="Severance Packages")
    assert location_of(SimpleNamespace(document=document, location="Severance Packages")) == ""
    assert location_of(SimpleNamespace(document=document, location="Severance Packages › Health")) == (
        "Severance Packages › Health"
    )
    assert location_of(SimpleNamespace(document=document, location=None)) == ""
