"""A real OpenID Connect provider on a loopback port, for the sign-in tests (sso/tests/idp/)."""

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from corporate.tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "corporate-test"
CLIENT_SECRET = "a-client-secret-for-tests"


def _rsa_pem():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass
class Provider:
    base_url: str
    issuer: str
    token: str

    def control(self, **body):
        response = requests.post(
            self.base_url + "/control/", json=body, headers={"X-Control-Token": self.token}, timeout=10
        )
        response.raise_for_status()

    def add_user(self, username, password="idp password", *, email=None, email_verified=True, groups=(), name=""):
        self.control(
            users=[
                {
                    "username": username,
                    "password": password,
                    "email": email or username,
                    "email_verified": email_verified,
                    "groups": list(groups),
                    "name": name,
                }
            ]
        )

    def register_client(self, redirect_uris, post_logout_redirect_uris=()):
        self.control(
            client={
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": list(redirect_uris),
                "post_logout_redirect_uris": list(post_logout_redirect_uris),
            }
        )

    def misbehave(self, mode=""):
        self.control(mode=mode)


@pytest.fixture(scope="session")
def oidc_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("idp")
    key_file = folder / "rsa.pem"
    key_file.write_text(_rsa_pem())
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    token = secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sso.tests.idp.settings",
        "IDP_DATABASE": str(folder / "idp.sqlite3"),
        "IDP_RSA_KEY_FILE": str(key_file),
        "IDP_ISSUER": base_url + "/o",
        "IDP_CONTROL_TOKEN": token,
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"], env=env, cwd=ROOT, check=True, timeout=120
    )
    log = open(folder / "idp.log", "w")  # noqa: SIM115  (open while the provider runs)
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base_url + "/o/.well-known/openid-configuration", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the test OpenID Connect provider did not start: " + (folder / "idp.log").read_text()
                )
            time.sleep(0.1)
        yield Provider(base_url=base_url, issuer=base_url + "/o", token=token)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
