"""Settings: environment parsing the deployment relies on."""

from __future__ import annotations

import pytest
from chatkit_backend.settings import Settings


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """The template declares DATABASE_URL/JWT_SECRET empty (for sam local); AWS leaves them so."""
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("JWT_SECRET", "")
    settings = Settings()
    assert settings.database_url is None
    assert settings.jwt_secret is None
    assert not settings.auth_configured


@pytest.mark.parametrize(
    "raw", ["https://a.example,https://b.example", '["https://a.example", "https://b.example"]']
)
def test_lists_accept_comma_or_json(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", raw)
    assert Settings().cors_allow_origins == ["https://a.example", "https://b.example"]


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-shown")
    text = repr(Settings())
    assert "x" * 40 not in text
    assert "sk-not-shown" not in text
