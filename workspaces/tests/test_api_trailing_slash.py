"""Under /api/, an address without its trailing slash is served as the slashed one; every 404 there is JSON."""

import pytest


def test_a_write_without_the_trailing_slash_keeps_its_method_and_body(api_client_for, member, workspace):
    client = api_client_for(member)
    created = client.post("/api/assistants", {"workspace": workspace.slug, "name": "Helpdesk"}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    changed = client.patch(f"/api/assistants/{pk}", {"name": "Front desk"}, format="json")
    assert changed.status_code == 200 and changed.json()["name"] == "Front desk"
    listed = client.get("/api/assistants", {"workspace": workspace.slug})
    assert listed.status_code == 200 and [a["name"] for a in listed.json()["results"]] == ["Front desk"]
    assert client.delete(f"/api/assistants/{pk}").status_code == 204


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/nothing-here", "/api/nothing-here/", "/api/assistants/999999"])
def test_every_404_under_api_is_json(api_client_for, member, path):
    response = api_client_for(member).get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json" and response.json()["detail"]


def test_pages_keep_the_redirect_to_the_slashed_address(client_for, member, workspace):
    response = client_for(member).get("/workspaces")
    assert response.status_code == 301 and response["Location"] == "/workspaces/"
    # A look-alike of the API's prefix is a page address.
    assert client_for(member).get("/apis").status_code == 404
    assert "text/html" in client_for(member).get("/apis")["Content-Type"]
