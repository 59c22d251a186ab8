import pytest

from aigc.core.errors import UserError
from aigc.serving.settings import ServeSettings, load_settings


def test_settings_travel_to_worker_processes_through_the_environment(monkeypatch, tmp_path):
    settings = load_settings(
        models={"a": tmp_path / "a.safetensors"}, port=9000, api_key_hashes=["ab" * 32, "cd" * 32], rate=30.0
    )
    for name, value in settings.to_environment().items():
        monkeypatch.setenv(name, value)
    assert ServeSettings() == settings


@pytest.mark.parametrize(
    "values, message",
    [
        ({"host": "0.0.0.0"}, "no API keys are set; give --api-keys FILE, or --insecure-public"),
        ({"models": {"a b": "x"}}, "model name 'a b'"),
        ({"queue_size": 0}, "serve setting queue_size: Input should be greater than or equal to 1"),
        ({"max_steps": 5000}, "serve setting max_steps"),
    ],
)
def test_bad_settings_are_one_line_user_errors(values, message):
    with pytest.raises(UserError, match=message):
        load_settings(**{"models": {"a": "a.safetensors"}, **values})


def test_public_host_is_allowed_with_keys_or_when_asked():
    load_settings(models={"a": "a"}, host="0.0.0.0", api_key_hashes="ab" * 32)
    load_settings(models={"a": "a"}, host="0.0.0.0", insecure_public=True)
    load_settings(models={"a": "a"}, host="::1")
