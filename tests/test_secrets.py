"""Secret resolution (env, mounted files) and redaction."""

from __future__ import annotations

import os

import pytest
from pydantic import SecretStr

from aim_ray.mcp.backends import secrets
from aim_ray.mcp.backends.secrets import (
    SecretNotFoundError,
    candidate_locations,
    redact,
    resolve_secret,
)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No ambient secrets: an empty mounted-secrets directory and no AIM_RAY_SECRET_* env."""
    for name in list(os.environ):
        if name.startswith(secrets.ENV_PREFIX) or name == secrets.SECRETS_DIR_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setattr(secrets, "DEFAULT_SECRETS_DIR", tmp_path / "k8s")


def test_env_var_with_key_is_found_first(monkeypatch):
    monkeypatch.setenv("AIM_RAY_SECRET_DB_CREDENTIALS_PASSWORD", "from-key-var")
    monkeypatch.setenv("AIM_RAY_SECRET_DB_CREDENTIALS", "from-name-var")
    value = resolve_secret("db-credentials", "password")
    assert isinstance(value, SecretStr)
    assert value.get_secret_value() == "from-key-var"
    assert "from-key-var" not in repr(value) and "from-key-var" not in str(value)


def test_env_var_for_the_whole_secret(monkeypatch):
    monkeypatch.setenv("AIM_RAY_SECRET_API_TOKEN", "tok-123456")
    assert resolve_secret("api-token", "token").get_secret_value() == "tok-123456"


def test_dots_and_dashes_become_underscores(monkeypatch):
    monkeypatch.setenv("AIM_RAY_SECRET_MY_APP_V1_API_KEY", "abcdef")
    assert resolve_secret("my-app.v1", "api-key").get_secret_value() == "abcdef"


def test_mounted_secret_directory(tmp_path, monkeypatch):
    mounted = tmp_path / "mounted" / "db-credentials"
    mounted.mkdir(parents=True)
    (mounted / "password").write_text("from-file\n")
    monkeypatch.setenv("AIM_RAY_SECRETS_DIR", str(tmp_path / "mounted"))
    assert resolve_secret("db-credentials", "password").get_secret_value() == "from-file"


def test_kubernetes_default_mount(tmp_path):
    mounted = tmp_path / "k8s" / "api-token"
    mounted.mkdir(parents=True)
    (mounted / "token").write_text("k8s-token-value")
    assert resolve_secret("api-token", "token").get_secret_value() == "k8s-token-value"


def test_env_wins_over_files(tmp_path, monkeypatch):
    (tmp_path / "k8s" / "s1").mkdir(parents=True)
    (tmp_path / "k8s" / "s1" / "password").write_text("file-value")
    monkeypatch.setenv("AIM_RAY_SECRET_S1_PASSWORD", "env-value")
    assert resolve_secret("s1", "password").get_secret_value() == "env-value"


def test_plain_environment_variables_are_not_consulted(monkeypatch):
    monkeypatch.setenv("HOME_PASSWORD", "nope-nope")
    monkeypatch.setenv("HOME", "/root")
    with pytest.raises(SecretNotFoundError):
        resolve_secret("home", "password")


def test_missing_secret_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("AIM_RAY_SECRETS_DIR", str(tmp_path / "mounted"))
    with pytest.raises(SecretNotFoundError) as caught:
        resolve_secret("db-credentials", "password")
    message = str(caught.value)
    assert "'db-credentials'" in message and "'password'" in message
    assert "env AIM_RAY_SECRET_DB_CREDENTIALS_PASSWORD" in message
    assert "env AIM_RAY_SECRET_DB_CREDENTIALS," in message
    assert str(tmp_path / "mounted" / "db-credentials" / "password") in message
    assert str(tmp_path / "k8s" / "db-credentials" / "password") in message


@pytest.mark.parametrize(
    ("name", "key"), [("../etc", "passwd"), ("ok", "../x"), ("UPPER", "k"), ("ok", "..")]
)
def test_names_that_could_escape_the_directory_are_refused(name, key):
    with pytest.raises(ValueError, match="invalid secret"):
        candidate_locations(name, key)


def test_redact_scrubs_every_resolved_value(monkeypatch):
    monkeypatch.setenv("AIM_RAY_SECRET_REDACT_ME_TOKEN", "s3cr3t-value-xyz")
    resolve_secret("redact-me", "token")
    text = "connect failed: password=s3cr3t-value-xyz; retry s3cr3t-value-xyz"
    assert redact(text) == "connect failed: password=***; retry ***"


def test_very_short_values_are_not_redacted():
    secrets.remember_secret("ab")
    assert redact("abc tab") == "abc tab"
