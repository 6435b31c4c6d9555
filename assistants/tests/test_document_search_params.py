"""/api/documents/search/ reads `limit` and `document` each on its own, from ASCII digits only."""

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
SEARCH = "/api/documents/search/"


def test_each_parameter_answers_for_itself(api_client_for, member, handbook):
    client = api_client_for(member)
    bad_document = client.get(SEARCH, {"q": "vacation", "document": "abc"})
    assert bad_document.status_code == 400 and list(bad_document.json()) == ["document"]
    bad_limit = client.get(SEARCH, {"q": "vacation", "limit": "ten", "document": handbook.pk})
    assert bad_limit.status_code == 400 and list(bad_limit.json()) == ["limit"]
    both = client.get(SEARCH, {"q": "vacation", "limit": "0", "document": "abc"})
    assert sorted(both.json()) == ["document", "limit"]


def test_another_scripts_digits_name_no_document(api_client_for, member, handbook, it_faq):
    client = api_client_for(member)
    found = client.get(SEARCH, {"q": "vacation", "document": handbook.pk}).json()
    assert found["count"] and {r["document"]["id"] for r in found["results"]} == {handbook.pk}
    spelled = str(handbook.pk).translate(ARABIC_INDIC)
    response = client.get(SEARCH, {"q": "vacation", "document": spelled})
    assert response.status_code == 400 and response.json() == {"document": ["No such document."]}
    assert client.get(SEARCH, {"q": "vacation", "limit": "٣"}).status_code == 400
