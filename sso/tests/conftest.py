import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sso.tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, oidc_server  # noqa: F401  (session fixture)

SLUG = "acme"
CALLBACK = f"http://testserver/accounts/sso/{SLUG}/callback/"


@pytest.fixture
def idp(oidc_server, settings, monkeypatch, db):  # noqa: F811
    """The test provider, registered with this site as "acme" (settings), behaving well."""
    oidc_server.register_client([CALLBACK], ["http://testserver/accounts/login/"])
    oidc_server.misbehave("")
    monkeypatch.setenv("OIDC_ACME_CLIENT_SECRET", CLIENT_SECRET)
    settings.OIDC_PROVIDERS = [
        {
            "slug": SLUG,
            "name": "Acme ID",
            "issuer": oidc_server.issuer,
            "client_id": CLIENT_ID,
            "secret_env": "OIDC_ACME_CLIENT_SECRET",
            "scopes": ["openid", "email", "profile"],
            "groups_claim": "groups",
            "group_map": [],
            "allowed_domains": [],
        }
    ]
    settings.OIDC_AUTO_CREATE = False
    settings.OIDC_ALLOWED_DOMAINS = []
    return oidc_server


class Journey:
    """One person's browser: this site through Django's test client, the provider over real HTTP."""

    def __init__(self, client, provider):
        self.client = client
        self.provider = provider
        self.browser = requests.Session()
        self.authorize_url = None
        self.callback_url = None

    def start(self, next_url=None):
        data = {"next": next_url} if next_url else {}
        response = self.client.post(f"/accounts/sso/{SLUG}/login/", data)
        assert response.status_code == 302, response.content[:500]
        self.authorize_url = response["Location"]
        return self.authorize_url

    def at_provider(self, username, password="idp password"):
        """Sign in at the provider, following its redirects; the callback URL it sends the browser to."""
        response = self.browser.get(self.authorize_url, allow_redirects=False)
        for _ in range(10):
            if response.status_code in (301, 302, 303):
                location = requests.compat.urljoin(response.url, response.headers["Location"])
                if location.startswith("http://testserver/"):
                    self.callback_url = location
                    return location
                response = self.browser.get(location, allow_redirects=False)
            elif response.status_code == 200 and 'name="password"' in response.text:
                csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text).group(1)
                next_value = parse_qs(urlsplit(response.url).query).get("next", [""])[0]
                response = self.browser.post(
                    response.url,
                    data={"username": username, "password": password, "csrfmiddlewaretoken": csrf, "next": next_value},
                    allow_redirects=False,
                )
            else:
                raise AssertionError(
                    f"unexpected answer from the provider: {response.status_code} {response.text[:300]}"
                )
        raise AssertionError("too many redirects at the provider")

    def back(self, url=None):
        parts = urlsplit(url or self.callback_url)
        return self.client.get(parts.path + ("?" + parts.query if parts.query else ""))

    def sign_in(self, username, password="idp password", next_url=None):
        self.start(next_url)
        self.at_provider(username, password)
        return self.back()


@pytest.fixture
def journey(client, idp):
    return Journey(client, idp)
