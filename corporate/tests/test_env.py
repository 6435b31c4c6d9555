import pytest
from django.core.exceptions import ImproperlyConfigured

from corporate.env import database_from_url, env_bool, env_int, env_list, redis_url


def test_env_bool_reads_words(monkeypatch):
    monkeypatch.setenv("FLAG", "Yes")
    assert env_bool("FLAG") is True
    monkeypatch.setenv("FLAG", "off")
    assert env_bool("FLAG", True) is False
    monkeypatch.delenv("FLAG")
    assert env_bool("FLAG", True) is True


def test_env_bool_names_the_variable(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        env_bool("FLAG")


def test_env_int(monkeypatch):
    monkeypatch.setenv("N", "12")
    assert env_int("N", 3) == 12
    monkeypatch.setenv("N", "twelve")
    with pytest.raises(ImproperlyConfigured, match="N must be a whole number"):
        env_int("N", 3)
    monkeypatch.setenv("N", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("N", 3, minimum=1)


def test_env_list(monkeypatch):
    monkeypatch.setenv("HOSTS", "a.example, b.example,,")
    assert env_list("HOSTS") == ["a.example", "b.example"]


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://root@localhost/db", "must start with postgres://"),
        ("nonsense", "must start with postgres://"),
        ("postgres://user@host:5432", "must name a database"),
        ("postgres://user@host:port/db", "not a valid database URL"),
    ],
)
def test_bad_database_url(url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        database_from_url("DATABASE_URL", url)


def test_good_database_url():
    config = database_from_url("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/corporate")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "corporate"


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://127.0.0.1:6379", "must start with redis://"),
        ("redis://127.0.0.1:notaport/0", "bad port"),
        ("redis:///0", "must name a host"),
        ("redis://127.0.0.1:6379/abc", "database number"),
    ],
)
def test_bad_redis_url(url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        redis_url("REDIS_URL", url)


def test_redis_url_errors_hide_the_password():
    with pytest.raises(ImproperlyConfigured) as error:
        redis_url("REDIS_URL", "redis://:secretpw@host:abc/0")
    assert "secretpw" not in str(error.value) and "***" in str(error.value)
