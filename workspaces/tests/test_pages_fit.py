"""Every page of the site fits the screen and passes axe-core, on a phone and a desktop.

Each page is looked at 390x844 and 1280x800: no horizontal scrolling, and
no serious or critical axe-core violation (corporate/tests/accessibility.py);
then in the dark colour scheme at 1280x800, for colour contrast.

The pages are found from the URL patterns, not listed by hand: every page
of a workspace is a GET endpoint of the isolation suite (each app's
`tests/isolation_endpoints.py`), and the pages outside a workspace are named
in OUTSIDE below. `test_every_page_is_visited` fails on a URL pattern that
answers a GET with a page but is visited by neither, so a new page is
caught; NOT_PAGES says, with the reason, which URLs are no page.

Each page is visited by every persona that may see it (viewer, member,
owner), since pages differ by role. One browser page per case: the persona
changes by its session cookie and the size by the viewport, with no reload.
"""

from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client

from corporate.tests.accessibility import axe_violations, describe
from corporate.tests.browser import screenshot as shot
from workspaces.roles import rank
from workspaces.tests.isolation import (
    Exempt,
    base_route,
    load_endpoints,
    project_apps,
    route_of,
    url_routes,
)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
PERSONAS = ["viewer", "member", "owner"]
MODULES = [load_endpoints(config) for config in project_apps()]

# URLs that answer no page a person looks at.
NOT_PAGES = [
    Exempt("api/", "the REST API answers JSON (Swagger UI at api/docs/ is Swagger's own page)", prefix=True),
    Exempt("v1/", "the OpenAI-compatible API answers JSON", prefix=True),
    Exempt("admin/", "the Django admin: Django's own responsive pages, for staff", prefix=True),
    Exempt("__debug__/", "the debug toolbar, with DEBUG on only", prefix=True),
    Exempt("health", "JSON for monitors"),
    Exempt("metrics", "Prometheus metrics in the text format, for scrapers"),
    Exempt("favicon.ico", "the site's icon: redirects to the SVG among the static files"),
    Exempt("accounts/color-scheme/", "a POST from the user menu's appearance switch"),
    Exempt("accounts/logout/", "signing out is a POST from the user menu"),
    Exempt("accounts/reset/<uidb64>/<token>/", "needs a mailed token; the same form as password_change/"),
    Exempt("accounts/sso/<slug:slug>/login/", "a POST from the sign-in page's button, redirecting to the provider"),
    Exempt("accounts/sso/<slug:slug>/callback/", "the provider's redirect back (sso/tests/test_browser.py)"),
    Exempt("accounts/2fa/verify/", "needs a right password first (twofactor/tests/test_browser.py)"),
    Exempt("accounts/2fa/recovery-codes/", "a POST from the two-factor page"),
    Exempt("accounts/2fa/disable/", "a POST from the two-factor page"),
    Exempt("audit/export/", "a CSV file"),
    Exempt("people/<int:pk>/deactivate/", "a POST from the user's page"),
    Exempt("people/<int:pk>/reactivate/", "a POST from the user's page"),
    Exempt("people/<int:pk>/password-reset/", "a POST from the user's page"),
]

# GET endpoints of the isolation suite that answer no page, by name.
NOT_PAGE_ENDPOINTS = {
    "document list rows (polling)": "the rows of the list page, polled into it",
    "document status": "JSON or a status fragment polled by the document page",
    "document download": "the stored file itself",
    "gateway of a workspace": "redirects to the gateway's models page",
    "usage CSV": "the usage breakdown as a CSV download",
    "export conversation": "a Markdown or JSON file to download",
    "audit log export": "a CSV file",
}

# Pages outside any workspace: route -> (path, who looks at it; None: signed out).
OUTSIDE = {
    "": ("/", "owner"),
    "accounts/login/": ("/accounts/login/", None),
    "accounts/password_reset/": ("/accounts/password_reset/", None),
    "accounts/password_reset/done/": ("/accounts/password_reset/done/", None),
    "accounts/reset/done/": ("/accounts/reset/done/", None),
    "accounts/password_change/": ("/accounts/password_change/", "member"),
    "accounts/password_change/done/": ("/accounts/password_change/done/", "member"),
    "accounts/2fa/": ("/accounts/2fa/", "member"),
    "accounts/2fa/setup/": ("/accounts/2fa/setup/", "member"),
    "workspaces/": ("/workspaces/", "owner"),
    "workspaces/new/": ("/workspaces/new/", "member"),
    "workspaces/invitations/<str:token>/": (lambda ctx: f"/workspaces/invitations/{ctx.invitation_token}/", "viewer"),
    # Pickers of a workspace: someone with one workspace goes straight to it, the admin here has two.
    "documents/": ("/documents/", "admin"),
    "assistants/": ("/assistants/", "admin"),
    "gateway/": ("/gateway/", "admin"),
    "api/docs/": ("/api/docs/", "owner"),
    "system/": ("/system/", "staff"),
    # Staff pages.
    "audit/": ("/audit/", "staff"),
    "people/": ("/people/", "staff"),
    "people/new/": ("/people/new/", "staff"),
    "people/<int:pk>/": (lambda ctx: f"/people/{ctx.users['member'].pk}/", "staff"),
}

# Error pages, by the path and persona that lead to them.
ERRORS = {
    "not found (404)": ("/workspaces/no-such-workspace/", "member", 404),
    "refused (403)": ("/workspaces/acme/settings/", "viewer", 403),
}

# Pages that still overflow on a phone, with the reason; each is an expected failure until fixed.
KNOWN_OVERFLOW = {}

# Pages not checked with axe-core, by OUTSIDE route or endpoint name, with the reason.
AXE_EXEMPT = {
    "api/docs/": "Swagger UI's own page and styles, as shipped by drf-spectacular",
}


def _context(workspace, other_workspace, personas):
    from workspaces.models import Invitation, Membership

    ctx = SimpleNamespace(workspace=workspace, other_workspace=other_workspace, users=personas, persona="owner")
    for module in MODULES:
        if hasattr(module, "setup"):
            module.setup(ctx)
    Membership.objects.create(workspace=other_workspace, user=personas["admin"], role="member")
    invitation = Invitation.objects.create(workspace=workspace, email=personas["viewer"].email, role="viewer")
    ctx.invitation_token = invitation.token
    return ctx


def _workspace_pages():
    """The GET endpoints of the isolation suite that are pages."""
    return [
        endpoint
        for module in MODULES
        for endpoint in module.ENDPOINTS
        if endpoint.method == "GET" and not endpoint.api and endpoint.name not in NOT_PAGE_ENDPOINTS
    ]


def _is_exempt(route):
    return any(exempt.matches(base_route(route)) for exempt in NOT_PAGES)


def _cases():
    cases = []
    for endpoint in _workspace_pages():
        cases.append(pytest.param(endpoint.name, id=endpoint.name.replace(" ", "-")))
    for route in OUTSIDE:
        cases.append(pytest.param(route, id=f"/{route}"))
    for name in ERRORS:
        cases.append(pytest.param(name, id=name.split()[-1]))
    return cases


def _endpoint_named(name):
    for module in MODULES:
        for endpoint in module.ENDPOINTS:
            if endpoint.name == name:
                return endpoint
    return None


def _visits(name, ctx):
    """(path, persona) pairs for a page, by its endpoint name or OUTSIDE route."""
    endpoint = _endpoint_named(name)
    if name in ERRORS:
        return [ERRORS[name][:2]]
    if endpoint is None:
        path, persona = OUTSIDE[name]
        return [(path(ctx) if callable(path) else path, persona)]
    visits = []
    for persona in PERSONAS:
        if rank(persona) >= rank(endpoint.role):
            ctx.persona = persona
            path = endpoint.path(ctx)
            if endpoint.data:
                query = "&".join(f"{key}={value}" for key, value in endpoint.data(ctx).items())
                path += ("&" if "?" in path else "?") + query
            visits.append((path, persona))
    return visits


# The innermost elements that reach past the right edge, to say what is too wide.
WIDE_ELEMENTS = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .filter(e => ![...e.children].some(c => c.getBoundingClientRect().right > window.innerWidth + 1))
  .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''))"""


# References to ids that the page lacks (axe-core lets most of these pass), e.g. "input#id_name aria-describedby=id_name_helptext".
BROKEN_REFERENCES = """() => {
  const broken = [];
  for (const attr of ['aria-describedby', 'aria-labelledby', 'aria-controls', 'for']) {
    for (const el of document.querySelectorAll(`[${attr}]`)) {
      for (const id of el.getAttribute(attr).split(/\\s+/).filter(Boolean)) {
        if (!document.getElementById(id)) broken.push(`${el.tagName.toLowerCase()}#${el.id} ${attr}=${id}`);
      }
    }
  }
  return broken;
}"""


def _slug(path):
    return path.strip("/").replace("/", "-").replace("?", "-").replace("=", "-").replace("&", "-") or "home"


def _user_for(personas, persona):
    """The persona's user; "staff" is the owner made staff (the System page)."""
    if persona == "staff":
        user = personas["owner"]
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        return user
    return personas.get(persona) if persona else None


def _sign_in(browser, base_url, user):
    browser.clear_cookies()
    if user is None:
        return
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    browser.add_cookies([{"name": cookie.key, "value": cookie.value, "url": base_url}])


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", _cases())
def test_page_fits_and_passes_axe(name, browser, live_server, workspace, other_workspace, personas, request):
    if name in KNOWN_OVERFLOW:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_OVERFLOW[name], strict=False))
    ctx = _context(workspace, other_workspace, personas)
    page = browser.new_page()
    # No colour transitions (Pico honours reduced motion): the scheme switch below shows its colours at once.
    page.emulate_media(reduced_motion="reduce")
    page.set_viewport_size(PHONE)
    too_wide = []
    failing = []
    try:
        for path, persona in _visits(name, ctx):
            _sign_in(browser, live_server.url, _user_for(personas, persona))
            response = page.goto(live_server.url + path)
            expected = ERRORS[name][2] if name in ERRORS else 200
            assert response.status == expected, f"{path} as {persona}: {response.status}"
            assert urlsplit(page.url).path == urlsplit(path).path, f"{path} as {persona} went to {page.url}"
            for size in (PHONE, DESKTOP):
                page.set_viewport_size(size)
                shot(page, f"{size['width']}-{_slug(path)}-{persona}.png")
                width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                if width > inner:
                    culprits = page.evaluate(WIDE_ELEMENTS)
                    too_wide.append(f"{path} as {persona}: {width}px wide on a {inner}px screen; {culprits}")
                violations = [] if name in AXE_EXEMPT else axe_violations(page)
                if violations:
                    failing.append(f"{path} as {persona} at {size['width']}px:\n{describe(violations)}")
            if name not in AXE_EXEMPT:
                page.emulate_media(color_scheme="dark")
                violations = axe_violations(page, rules=["color-contrast"])
                if violations:
                    failing.append(f"{path} as {persona} at {DESKTOP['width']}px, dark:\n{describe(violations)}")
                page.emulate_media(color_scheme="light")
            broken = [] if name in AXE_EXEMPT else page.evaluate(BROKEN_REFERENCES)
            if broken:
                failing.append(f"{path} as {persona} refers to ids that are missing: {broken}")
            page.set_viewport_size(PHONE)
    finally:
        page.close()
        browser.clear_cookies()
    assert not too_wide, "\n".join(too_wide)
    assert not failing, "\n".join(failing)


@pytest.mark.django_db
def test_every_page_is_visited(workspace, other_workspace, personas, client_for):
    """A URL pattern that answers a GET with a page is visited above, or said here to be no page."""
    ctx = _context(workspace, other_workspace, personas)
    unvisited = _unvisited(ctx, client_for(personas["owner"]))
    assert not unvisited, "Pages the phone test does not visit (add a GET Endpoint, or OUTSIDE / NOT_PAGES):\n" + (
        "\n".join(unvisited)
    )


@pytest.mark.django_db
@pytest.mark.urls("workspaces.tests.isolation_urls")
def test_a_new_page_fails_the_visit_check(workspace, other_workspace, personas, client_for):
    ctx = _context(workspace, other_workspace, personas)
    assert _unvisited(ctx, client_for(personas["owner"])) == [
        "workspaces/<slug:slug>/export/ (workspaces.tests.isolation_urls.export) is neither visited, "
        "an action of the isolation suite, nor exempt"
    ]


def _unvisited(ctx, owner):
    visited = set(OUTSIDE)
    for endpoint in _workspace_pages():
        ctx.persona = endpoint.role
        visited.add(route_of(endpoint.path(ctx)))
    # Routes with only non-GET endpoints must refuse a GET (405): they are actions, not pages.
    unvisited = []
    for module in MODULES:
        for endpoint in module.ENDPOINTS:
            ctx.persona = endpoint.role
            path = endpoint.path(ctx)
            route = route_of(path)
            if endpoint.api or route in visited or _is_exempt(route) or endpoint.name in NOT_PAGE_ENDPOINTS:
                continue
            status = owner.get(path).status_code
            if status != 405:
                unvisited.append(f"{route} answers GET with {status}")
    for route, view in url_routes():
        if base_route(route) not in visited and not _is_exempt(route) and not _covered_by_endpoint(route, ctx):
            unvisited.append(f"{route} ({view}) is neither visited, an action of the isolation suite, nor exempt")
    return unvisited


def _covered_by_endpoint(route, ctx):
    for module in MODULES:
        for endpoint in module.ENDPOINTS:
            ctx.persona = endpoint.role
            if route_of(endpoint.path(ctx)) == base_route(route):
                return True
    return False


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_menu_button_opens_the_site_menu_on_a_phone(browser, live_server, workspace, member):
    page = browser.new_page()
    try:
        _sign_in(browser, live_server.url, member)
        page.set_viewport_size(PHONE)
        page.goto(live_server.url + f"/workspaces/{workspace.slug}/")
        toggle = page.locator("[data-menu-toggle]")
        link = page.locator(".main-nav a", has_text="Assistants")
        assert toggle.is_visible() and not link.is_visible()
        assert toggle.get_attribute("aria-expanded") == "false"
        toggle.click()
        assert link.is_visible() and toggle.get_attribute("aria-expanded") == "true"
        assert page.locator(".header-search input").is_visible()
        page.locator(".user-menu summary").click()
        assert page.locator(".user-menu button", has_text="Sign out").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        violations = axe_violations(page)
        assert not violations, describe(violations)
        shot(page, "390-menu-open.png")
        link.click()
        page.wait_for_url(f"**/assistants/{workspace.slug}/")
        assert not page.locator(".main-nav a", has_text="Assistants").is_visible()
        # On a desktop the navigation shows without the button.
        page.set_viewport_size(DESKTOP)
        assert not page.locator("[data-menu-toggle]").is_visible()
        assert page.locator(".main-nav a", has_text="Documents").is_visible()
    finally:
        page.close()
        browser.clear_cookies()


PLACEHOLDER_FITS = """() => {
    const input = document.querySelector('.header-search input');
    const style = getComputedStyle(input);
    const context = document.createElement('canvas').getContext('2d');
    context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return {text: context.measureText(input.placeholder).width, room};
}"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_header_search_shows_its_whole_placeholder_at_1280(browser, live_server, workspace, member):
    page = browser.new_page()
    try:
        page.set_viewport_size(DESKTOP)
        for staff in (False, True):  # staff see two more links in the header
            member.is_staff = staff
            member.save(update_fields=["is_staff"])
            _sign_in(browser, live_server.url, member)
            page.goto(live_server.url + f"/documents/{workspace.slug}/")
            fit = page.evaluate(PLACEHOLDER_FITS)
            assert fit["text"] <= fit["room"], (staff, fit)
            menu = page.locator(".user-menu summary").bounding_box()
            assert menu["x"] + menu["width"] <= DESKTOP["width"], staff
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            shot(page, f"1280-header-search{'-staff' if staff else ''}.png")
    finally:
        page.close()
        browser.clear_cookies()


BROKEN_BADGES = """[...document.querySelectorAll('.badge')]
    .filter(b => b.getBoundingClientRect().height > 2 * parseFloat(getComputedStyle(b).fontSize))
    .map(b => b.textContent.trim())"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_long_names_and_many_documents_never_widen_a_page(browser, live_server, workspace, owner):
    """Names are what people type: one long word in a name, or a workspace with many documents, still fits."""
    from assistants.models import Assistant
    from documents.tests.isolation_endpoints import _document

    word = "Quarterly_financial_report_for_the_board_of_directors_final_version_approved"
    workspace.name = word[:100]
    workspace.save(update_fields=["name"])
    owner.full_name = word
    owner.save(update_fields=["full_name"])
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    assistant = Assistant.objects.create(workspace=workspace, name=word[:100], created_by=owner)
    document = _document(workspace, word, "ready", uploaded_by=owner)
    for n in range(12):
        _document(workspace, f"Policy handbook chapter {n}", "ready", uploaded_by=owner)
    paths = [
        "/workspaces/",
        f"/workspaces/{workspace.slug}/",
        f"/workspaces/{workspace.slug}/settings/",
        f"/assistants/{workspace.slug}/",
        f"/assistants/{workspace.slug}/{assistant.pk}/edit/",
        f"/documents/{workspace.slug}/{document.pk}/",
        f"/people/{owner.pk}/",
    ]
    page = browser.new_page()
    too_wide = []
    try:
        _sign_in(browser, live_server.url, owner)
        for size in (PHONE, DESKTOP):
            page.set_viewport_size(size)
            for path in paths:
                assert page.goto(live_server.url + path).status == 200, path
                width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                if width > inner:
                    too_wide.append(f"{path}: {width}px wide on a {inner}px screen; {page.evaluate(WIDE_ELEMENTS)}")
        # Without the staff links the header shows the person's name: a long one is cut short, not the header.
        owner.is_staff = False
        owner.save(update_fields=["is_staff"])
        for size in (PHONE, DESKTOP):
            page.set_viewport_size(size)
            page.goto(live_server.url + "/workspaces/")
            width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if width > inner:
                too_wide.append(f"header at {inner}px: {width}px wide; {page.evaluate(WIDE_ELEMENTS)}")
            # Beside a long name, a role badge keeps its word whole.
            broken = page.evaluate(BROKEN_BADGES)
            if broken:
                too_wide.append(f"badges broken over lines at {inner}px: {broken}")
        # The document picker lists its documents one under another, not in one row.
        page.goto(live_server.url + f"/assistants/{workspace.slug}/{assistant.pk}/edit/")
        tops = page.evaluate(
            "[...document.querySelectorAll('#id_documents label')].map(l => l.getBoundingClientRect().top)"
        )
    finally:
        page.close()
        browser.clear_cookies()
    assert not too_wide, "\n".join(too_wide)
    assert len(set(tops)) == len(tops) > 10, tops


# Widths between the phone and 1280 px, where Pico's container is 700 or 950 px wide.
LAPTOP_WIDTHS = [961, 1024, 1100, 1180, 1279]

# Where the header's row reaches past its container, or the user menu out of sight.
HEADER_FIT = """() => {
    const nav = document.querySelector('.site-nav');
    const style = getComputedStyle(nav);
    const edge = nav.getBoundingClientRect().right - parseFloat(style.paddingRight);
    const toggle = document.querySelector('[data-menu-toggle]');
    const menu = document.querySelector('.user-menu summary');
    const reachable = [toggle, menu].some(e => e.offsetParent && e.getBoundingClientRect().right <= innerWidth);
    const past = [...nav.querySelectorAll('.brand, .menu-toggle, .header-search, .main-nav a, .user-menu summary')]
        .filter(e => e.offsetParent && e.getBoundingClientRect().right > edge + 1)
        .map(e => e.textContent.trim() || e.className);
    return {page: document.documentElement.scrollWidth, reachable, past};
}"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_header_fits_at_laptop_widths_for_staff_and_members(browser, live_server, workspace, member):
    """From 961 to 1279 px the header's links, search box and user menu stay on the screen, for staff too."""
    page = browser.new_page()
    problems = []
    try:
        for staff in (False, True):  # staff see People, Audit log, System and Admin as well
            member.is_staff = staff
            member.save(update_fields=["is_staff"])
            _sign_in(browser, live_server.url, member)
            for path in ("/", f"/documents/{workspace.slug}/"):
                page.goto(live_server.url + path)
                for width in LAPTOP_WIDTHS:
                    page.set_viewport_size({"width": width, "height": 800})
                    fit = page.evaluate(HEADER_FIT)
                    if fit["page"] > width or fit["past"] or not fit["reachable"]:
                        problems.append(f"{path} at {width}px, staff={staff}: {fit}")
                    shot(page, f"{width}-header{'-staff' if staff else ''}-{_slug(path)}.png")
    finally:
        page.close()
        browser.clear_cookies()
    assert not problems, "\n".join(problems)


# Words of table cells that are broken over two lines (a name cut "Suppo / rt").
BROKEN_WORDS = """(selector) => {
    const broken = [];
    for (const cell of document.querySelectorAll(selector)) {
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            for (const match of node.data.matchAll(/\\S+/g)) {
                const range = document.createRange();
                range.setStart(node, match.index);
                range.setEnd(node, match.index + match[0].length);
                const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
                if (lines.size > 1) broken.push(match[0]);
            }
        }
    }
    return broken;
}"""


# Tables (and the boxes around them) that scroll sideways: read only by scrolling, a button out of sight.
FITS_ITS_BOX = """(selector) => [...document.querySelectorAll(selector)]
    .flatMap(t => [t, t.parentElement])
    .filter(e => e.scrollWidth > e.clientWidth + 1)
    .map(e => `${e.tagName.toLowerCase()}.${e.className}: ${e.scrollWidth} in ${e.clientWidth}`)"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_gateway_keys_and_models_are_cards_on_a_phone(browser, live_server, workspace, owner):
    """On a phone each key and model is a card: the Revoke button is on the screen, names keep their words whole."""
    from llmgateway.models import ApiKey

    ApiKey.create(workspace, "Support bot with a rather long descriptive name for the integration", owner)
    page = browser.new_page()
    try:
        _sign_in(browser, live_server.url, owner)
        for size in (PHONE, {"width": 900, "height": 800}, DESKTOP):
            page.set_viewport_size(size)
            page.goto(live_server.url + f"/gateway/{workspace.slug}/keys/")
            revoke = page.get_by_role("button", name="Revoke").bounding_box()
            assert revoke["x"] >= 0 and revoke["x"] + revoke["width"] <= size["width"], (size, revoke)
            assert page.evaluate(BROKEN_WORDS, "main table td") == [], size
            assert page.evaluate(FITS_ITS_BOX, "main table") == [], size
            assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), size
            shot(page, f"{size['width']}-gateway-keys.png")
            page.goto(live_server.url + f"/gateway/{workspace.slug}/models/")
            assert page.evaluate(BROKEN_WORDS, "main table td") == [], size
            assert page.evaluate(FITS_ITS_BOX, "main table") == [], size
            assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), size
            shot(page, f"{size['width']}-gateway-models.png")
    finally:
        page.close()
        browser.clear_cookies()


# Controls smaller than a finger (44 px high, 40 px wide), by their text.
SMALL_TARGETS = """(selector) => [...document.querySelectorAll(selector)]
    .filter((e) => e.offsetParent)
    .map((e) => [e.textContent.trim() || e.getAttribute('aria-label'), e.getBoundingClientRect()])
    .filter(([, r]) => Math.round(r.height) < 44 || Math.round(r.width) < 40)
    .map(([text, r]) => `${text}: ${Math.round(r.width)}x${Math.round(r.height)}`)"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_buttons_pills_and_filters_are_big_enough_to_tap_on_a_phone(browser, live_server, workspace, owner):
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    pages = {
        f"/workspaces/{workspace.slug}/members/": "main table td :is(select, button)",
        f"/documents/{workspace.slug}/": "nav.subtabs a",
        "/audit/": ".audit-filters > summary",
    }
    page = browser.new_page()
    small = []
    try:
        _sign_in(browser, live_server.url, owner)
        page.set_viewport_size(PHONE)
        for path, controls in pages.items():
            page.goto(live_server.url + path)
            assert page.locator(controls).count(), path
            found = page.evaluate(SMALL_TARGETS, controls)
            if found:
                small.append(f"{path}: {found}")
            shot(page, f"390-targets-{_slug(path)}.png")
    finally:
        page.close()
        browser.clear_cookies()
    assert not small, "\n".join(small)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_sign_in_form_is_on_the_first_screen_of_a_phone(browser, live_server):
    page = browser.new_page()
    try:
        browser.clear_cookies()
        page.set_viewport_size(PHONE)
        # Sent to sign in from a page: the notice above the form takes room too.
        page.goto(live_server.url + "/workspaces/")
        button = page.locator(".auth-card button[type=submit]").bounding_box()
        assert button["y"] + button["height"] <= PHONE["height"], button
        shot(page, "390-sign-in.png")
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_server_error_page_follows_the_dark_scheme_and_shows_the_site(browser, live_server):
    from django.test import RequestFactory

    from corporate.views import server_error

    html = server_error(RequestFactory().get("/")).content.decode()
    page = browser.new_page()
    try:
        browser.clear_cookies()
        # The page as a failing request answers it, with the site's static files around it.
        page.route(
            live_server.url + "/failing/", lambda route: route.fulfill(status=500, body=html, content_type="text/html")
        )
        page.emulate_media(color_scheme="dark", reduced_motion="reduce")
        page.goto(live_server.url + "/failing/")
        assert page.locator(".site-header .brand").is_visible()
        assert page.locator("link[rel=icon]").count() == 1
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        channels = [int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]]
        assert max(channels) < 80, background
        shot(page, "500-dark.png")
    finally:
        page.emulate_media(color_scheme="light")
        page.close()


USAGE_LAYOUT = """() => {
    const box = (e) => e.getBoundingClientRect();
    const form = document.querySelector('.gw-usage-filter');
    const fields = Object.fromEntries([...form.querySelectorAll('label')].map(
        (l) => [l.firstChild.textContent.trim(), box(l.querySelector('input, select'))]));
    return {
        left: box(form).left,
        fields: Object.fromEntries(Object.entries(fields).map(([k, r]) => [k, [r.left, r.width]])),
        headers: [...document.querySelectorAll('.gw-breakdowns thead th:first-child')].map((th) => th.textContent.trim()),
        tables: [...new Set([...document.querySelectorAll('.gw-breakdowns table')].map((t) => Math.round(box(t).width)))],
        saves: [...new Set([...document.querySelectorAll('.gw-limit-forms button[type=submit]')].map((b) => Math.round(box(b).top)))],
    };
}"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_usage_page_filter_tables_and_limit_cards_line_up(browser, live_server, workspace, owner):
    """The usage page: each breakdown table's first column has a name; on a phone the date fields are
    one even grid and the four tables one width; on a desktop the limit cards' Save buttons are in line."""
    from django.utils import timezone

    from llmgateway.models import UsageDay

    UsageDay.objects.create(
        workspace=workspace, user_id=owner.pk, model="offline", cache="miss", requests=3, day=timezone.localdate()
    )
    page = browser.new_page()
    try:
        _sign_in(browser, live_server.url, owner)
        for size in (PHONE, DESKTOP):
            page.set_viewport_size(size)
            page.goto(live_server.url + f"/gateway/{workspace.slug}/usage/")
            layout = page.evaluate(USAGE_LAYOUT)
            assert layout["headers"] == ["Person", "Assistant", "Model", "API key"], layout
            assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), size
            shot(page, f"{size['width']}-gateway-usage.png")
            if size == PHONE:
                fields = layout["fields"]
                assert fields["From"][1] == fields["To"][1], fields
                assert fields["From"][0] == fields["Per"][0] == layout["left"], layout
                assert len(layout["tables"]) == 1, layout
            else:
                assert len(layout["saves"]) == 1, layout
    finally:
        page.close()
        browser.clear_cookies()


# Pieces of a filter row drawn as Pico's joined search group: squared or mixed corners, or past the row's left edge.
JOINED_PIECES = """(selector) => {
    const form = document.querySelector(selector);
    const left = form.getBoundingClientRect().left;
    return [...form.querySelectorAll('input, select, button')].filter((e) => {
        const s = getComputedStyle(e);
        const corners = [s.borderTopLeftRadius, s.borderTopRightRadius, s.borderBottomLeftRadius, s.borderBottomRightRadius];
        return new Set(corners).size !== 1 || corners.includes('0px') || e.getBoundingClientRect().left < left - 0.5;
    }).map((e) => e.name || e.textContent.trim());
}"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_people_filter_two_factor_cancel_audit_details_and_archive_buttons(browser, live_server, workspace, owner):
    """The People filter row is separate rounded fields; a voluntary two-factor setup can be cancelled;
    an audit event's details are labelled on a phone; the assistant editor's Archive and Delete are one width."""
    from assistants.models import Assistant
    from audit import record

    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    record(owner, "user.login", details={"backend": "ModelBackend"})
    assistant = Assistant.objects.create(workspace=workspace, name="Helpdesk", created_by=owner)
    page = browser.new_page()
    try:
        _sign_in(browser, live_server.url, owner)
        for size in (PHONE, DESKTOP):
            page.set_viewport_size(size)
            page.goto(live_server.url + "/people/?q=x")
            assert page.evaluate(JOINED_PIECES, "form.search-row") == [], size

            page.goto(live_server.url + "/accounts/2fa/setup/")
            cancel = page.get_by_role("link", name="Cancel")
            assert cancel.is_visible() and cancel.get_attribute("href") == "/accounts/2fa/", size

            page.goto(live_server.url + f"/assistants/{workspace.slug}/{assistant.pk}/edit/")
            archive = page.get_by_role("button", name="Archive assistant").bounding_box()
            delete = page.get_by_role("button", name="Delete assistant…").bounding_box()
            assert (archive["x"], archive["width"]) == (delete["x"], delete["width"]), (size, archive, delete)

        page.set_viewport_size(PHONE)
        page.goto(live_server.url + "/audit/")
        label = page.locator("td", has_text="ModelBackend").first.evaluate(
            "td => getComputedStyle(td, '::before').content"
        )
        assert "Details" in label, label
        shot(page, "390-audit-details.png")
    finally:
        page.close()
        browser.clear_cookies()
