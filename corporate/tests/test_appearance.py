"""The colour scheme kept on the account, and the site's icon."""

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

pytestmark = pytest.mark.django_db

URL = reverse("color_scheme")


def html_tag(response):
    body = response.content.decode()
    return body[body.index("<html") : body.index(">", body.index("<html")) + 1]


def test_pages_follow_the_system_until_a_scheme_is_chosen(client_for, member):
    client = client_for(member)
    assert member.color_scheme == "system"
    assert "data-theme" not in html_tag(client.get(reverse("dashboard")))
    assert 'aria-pressed="true">System</button>' in client.get(reverse("dashboard")).content.decode()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_chosen_scheme_is_kept_on_the_account(client_for, member, scheme):
    client = client_for(member)
    response = client.post(URL, {"color_scheme": scheme, "next": "/workspaces/"})
    assert response.status_code == 302 and response["Location"] == "/workspaces/"
    member.refresh_from_db()
    assert member.color_scheme == scheme
    # Another session of the same person gets it too.
    assert html_tag(client_for(member).get(reverse("dashboard"))) == f'<html lang="en" data-theme="{scheme}">'


def test_back_to_system(client_for, member):
    member.color_scheme = "dark"
    member.save(update_fields=["color_scheme"])
    client = client_for(member)
    response = client.post(URL, {"color_scheme": "system"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and response.json() == {"color_scheme": "system"}
    assert "data-theme" not in html_tag(client.get(reverse("dashboard")))


def test_unknown_scheme_is_refused_with_a_reason(client_for, member):
    client = client_for(member)
    page = client.post(URL, {"color_scheme": "purple"})
    assert page.status_code == 400 and b"Choose a colour scheme: system, light, dark." in page.content
    api = client.post(URL, {"color_scheme": "purple"}, HTTP_ACCEPT="application/json")
    assert api.status_code == 400 and "color_scheme" in api.json()
    member.refresh_from_db()
    assert member.color_scheme == "system"


def test_next_must_stay_on_the_site(client_for, member):
    response = client_for(member).post(URL, {"color_scheme": "dark", "next": "https://evil.example/"})
    assert response["Location"] == reverse("dashboard")


def test_only_signed_in_people_and_only_by_post(client, client_for, member):
    assert client.post(URL, {"color_scheme": "dark"}).status_code == 302  # to the sign-in page
    assert client_for(member).get(URL).status_code == 405


def test_sign_in_page_follows_the_system(client):
    assert "data-theme" not in html_tag(client.get(reverse("login")))


def test_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith(".svg")
    assert "/static/img/favicon" in response["Location"]
    assert finders.find("img/favicon.svg")
    assert b'rel="icon"' in client.get(reverse("login")).content


@pytest.mark.parametrize("back", ["-1", "workspaces", "é"])
def test_next_that_is_no_path_still_saves_the_choice(client_for, member, back):
    response = client_for(member).post(URL, {"color_scheme": "dark", "next": back})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.color_scheme == "dark"
