"""The one workspace layout: its tabs (registered by each app), breadcrumb and the header's search box."""

import re

import pytest
from django.urls import reverse

from workspaces import navigation

pytestmark = pytest.mark.django_db

# Every page of a workspace, in every app, shows the same tab bar.
PAGES = [
    ("workspaces:detail", "Overview"),
    ("workspaces:members", "Members"),
    ("workspaces:settings", "Settings"),
    ("documents:list", "Documents"),
    ("documents:search", "Documents"),
    ("documents:upload", "Documents"),
    ("assistants:list", "Assistants"),
    ("assistants:create", "Assistants"),
    ("assistants:usage", "Assistants"),
    ("llmgateway:models", "Model gateway"),
    ("llmgateway:keys", "Model gateway"),
    ("llmgateway:cache", "Model gateway"),
]


def _tabs(html):
    bar = re.search(r'<nav class="tabs" aria-label="Workspace sections">(.*?)</nav>', html, re.S).group(1)
    labels = re.findall(r">([^<]+)</a>", bar)
    current = re.findall(r'aria-current="page">([^<]+)</a>', bar)
    return labels, current


@pytest.mark.parametrize("url_name, current", PAGES)
def test_every_workspace_page_has_the_same_tab_bar(client_for, owner, workspace, url_name, current):
    html = client_for(owner).get(reverse(url_name, args=[workspace.slug])).content.decode()
    labels, marked = _tabs(html)
    assert labels == ["Overview", "Documents", "Assistants", "Model gateway", "Members", "Settings"]
    assert marked == [current]
    # The breadcrumb leads back to the workspaces and to this one.
    assert f'<a href="/workspaces/{workspace.slug}/">{workspace.name}</a>' in html


def test_tabs_follow_the_role(client_for, viewer, workspace):
    html = client_for(viewer).get(reverse("documents:list", args=[workspace.slug])).content.decode()
    labels, _ = _tabs(html)
    assert labels == ["Overview", "Documents", "Assistants", "Model gateway", "Members"]
    # Sub-tabs of the current tab: a viewer may search but not upload.
    subtabs = re.search(r'<nav class="subtabs"[^>]*>(.*?)</nav>', html, re.S).group(1)
    assert re.findall(r">([^<]+)</a>", subtabs) == ["All documents", "Search"]


def test_an_app_adds_a_tab_with_one_line(client_for, admin_user, viewer, workspace):
    saved = dict(navigation._TABS)
    try:
        navigation.tab("audit", "Audit log", "workspaces:members", action="manage_members", order=80, current=())
        html = client_for(admin_user).get(reverse("workspaces:detail", args=[workspace.slug])).content.decode()
        assert _tabs(html)[0][-3:] == ["Members", "Audit log", "Settings"]
        html = client_for(viewer).get(reverse("workspaces:detail", args=[workspace.slug])).content.decode()
        assert "Audit log" not in _tabs(html)[0]
    finally:
        navigation._TABS.clear()
        navigation._TABS.update(saved)


def test_tabs_cost_no_query(owner, workspace, rf, django_assert_num_queries):
    navigation.tabs_for(owner, workspace, "documents:list")  # the user's roles, loaded once per request
    with django_assert_num_queries(0):
        tabs, subtabs = navigation.tabs_for(owner, workspace, "documents:search")
    assert [t.key for t in tabs if t.current] == ["documents"]
    assert [t.key for t in subtabs if t.current] == ["documents-search"]


def test_header_search_box_searches_the_current_workspace(client_for, viewer, workspace, other_workspace):
    client = client_for(viewer)
    html = client.get(reverse("assistants:list", args=[workspace.slug])).content.decode()
    assert (
        f'<form method="get" action="/documents/{workspace.slug}/search/" role="search" class="header-search">' in html
    )
    # Outside a workspace there is none.
    assert 'class="header-search"' not in client.get(reverse("workspaces:list")).content.decode()
    # A search from it lands on the workspace's search page with the words kept in the box.
    page = client.get(f"/documents/{workspace.slug}/search/", {"q": "holiday"}).content.decode()
    assert 'name="q" placeholder="Search Acme Research"' in page and 'value="holiday"' in page


def test_pickers_go_straight_to_the_only_workspace(client_for, member, workspace, other_workspace):
    client = client_for(member)
    for url, target in [
        ("/documents/", f"/documents/{workspace.slug}/"),
        ("/assistants/", f"/assistants/{workspace.slug}/"),
        ("/gateway/", f"/gateway/{workspace.slug}/models/"),
    ]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == target, url


def test_pickers_list_several_workspaces(client_for, outsider, workspace, other_workspace):
    from workspaces.models import Membership

    Membership.objects.create(workspace=workspace, user=outsider, role="viewer")
    client = client_for(outsider)
    for url in ["/documents/", "/assistants/", "/gateway/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"Acme Research" in response.content and b"Globex Secret" in response.content
