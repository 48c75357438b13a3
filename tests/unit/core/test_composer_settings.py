"""The composer's settings: the dictation body fits a function URL, the model list's default."""

from __future__ import annotations

import pytest
from chatkit_backend.settings import FUNCTION_URL_REQUEST_BYTES, ModelOption, Settings
from pydantic import ValidationError


def test_the_default_audio_limit_fits_a_function_url_request() -> None:
    settings = Settings()
    assert settings.max_request_bytes < settings.transcribe_request_bytes
    assert settings.transcribe_request_bytes <= FUNCTION_URL_REQUEST_BYTES


def test_audio_whose_base64_body_cannot_reach_the_function_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="MAX_AUDIO_BYTES"):
        Settings(max_audio_bytes=FUNCTION_URL_REQUEST_BYTES * 3 // 4)


def test_the_model_list_defaults_to_model_name_and_to_its_first_entry() -> None:
    assert Settings(model_name="m1").models_offered == [
        ModelOption(id="m1", label="m1", default=True)
    ]
    offered = Settings(model_choices=[{"id": "a", "label": "A"}, {"id": "b", "label": "B"}])
    assert [(option.id, option.default) for option in offered.models_offered] == [
        ("a", True),
        ("b", False),
    ]


@pytest.mark.parametrize(
    "choices",
    [
        [{"id": "a", "label": "A", "default": True}, {"id": "b", "label": "B", "default": True}],
        [{"id": "a", "label": "A"}, {"id": "a", "label": "again"}],
    ],
)
def test_an_ambiguous_model_list_is_refused(choices: list[dict[str, object]]) -> None:
    with pytest.raises(ValidationError, match="MODEL_CHOICES"):
        Settings(model_choices=choices)
