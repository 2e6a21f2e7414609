import pytest

from services.gateway.settings import GatewaySettings
from services.launcher.settings import RunSettings
from services.listener.settings import ListenerSettings
from shared.config import SettingsError, settings_from_environ
from shared.config.startup import EXIT_BAD_SETTINGS, settings_or_exit

pytestmark = pytest.mark.unit


def test_defaults_need_no_environment():
    settings = settings_from_environ(ListenerSettings, {})
    assert settings.listener.port == 11112
    assert settings.broker.url.startswith("redis://")


def test_nested_variables_fill_sections_and_convert_types():
    settings = settings_from_environ(GatewaySettings, {
        "TUMORSEARCH_GATEWAY__PORT": "9090",
        "TUMORSEARCH_VECTOR_STORE__URL": "https://qdrant.example:6333",
        "TUMORSEARCH_VECTOR_STORE__API_KEY": "s3cret",
        "TUMORSEARCH_HOME": "/srv/tumorsearch",
    })
    assert settings.gateway.port == 9090
    assert settings.vector_store.api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert str(settings.home) == "/srv/tumorsearch"


@pytest.mark.parametrize("text", ['["https://pacs.example", "https://viewer.example"]',
                                  "https://pacs.example, https://viewer.example"])
def test_list_settings_take_a_json_list_or_comma_separated_values(text):
    settings = settings_from_environ(GatewaySettings, {"TUMORSEARCH_GATEWAY__CORS_ORIGINS": text,
                                                       "TUMORSEARCH_GATEWAY__OIDC_ALGORITHMS": "ES256"})
    assert list(settings.gateway.cors_origins) == ["https://pacs.example", "https://viewer.example"]
    assert list(settings.gateway.oidc_algorithms) == ["ES256"]


def test_a_broken_json_list_is_an_error_naming_the_variable():
    with pytest.raises(SettingsError, match="TUMORSEARCH_GATEWAY__CORS_ORIGINS: .*expected a JSON list"):
        settings_from_environ(GatewaySettings, {"TUMORSEARCH_GATEWAY__CORS_ORIGINS": '["https://a"'})


def test_variables_of_other_programs_are_ignored():
    # One environment serves every program of `make run`: the listener has no gateway section.
    settings = settings_from_environ(ListenerSettings, {"TUMORSEARCH_GATEWAY__PORT": "9090", "PATH": "/bin"})
    assert settings.listener.port == 11112


def test_invalid_value_names_the_variable_what_was_expected_and_what_was_found():
    with pytest.raises(SettingsError) as caught:
        settings_from_environ(ListenerSettings, {"TUMORSEARCH_LISTENER__PORT": "eleven"})
    message = str(caught.value)
    assert "TUMORSEARCH_LISTENER__PORT" in message
    assert "integer" in message and "'eleven'" in message


def test_out_of_range_and_pattern_violations_are_reported_together():
    with pytest.raises(SettingsError) as caught:
        settings_from_environ(ListenerSettings, {"TUMORSEARCH_LISTENER__PORT": "70000",
                                                 "TUMORSEARCH_BROKER__URL": "amqp://rabbit"})
    message = str(caught.value)
    assert "TUMORSEARCH_LISTENER__PORT" in message and "65535" in message
    assert "TUMORSEARCH_BROKER__URL" in message and "amqp://rabbit" in message


def test_misspelt_key_in_a_known_section_fails_instead_of_falling_back_to_a_default():
    with pytest.raises(SettingsError, match="TUMORSEARCH_LISTENER__PROT: not a known setting"):
        settings_from_environ(ListenerSettings, {"TUMORSEARCH_LISTENER__PROT": "104"})


def test_a_value_where_a_section_is_expected_is_an_error():
    with pytest.raises(SettingsError, match="TUMORSEARCH_LISTENER"):
        settings_from_environ(ListenerSettings, {"TUMORSEARCH_LISTENER": "on"})


def test_settings_are_frozen_once_built():
    settings = settings_from_environ(RunSettings, {})
    with pytest.raises(Exception):
        settings.run.stop_timeout_s = 1  # type: ignore[misc]


def test_settings_or_exit_stops_the_program_with_ex_config(capsys):
    with pytest.raises(SystemExit) as caught:
        settings_or_exit(ListenerSettings, {"TUMORSEARCH_LOG__LEVEL": "LOUD"}, "listener")
    assert caught.value.code == EXIT_BAD_SETTINGS
    assert "TUMORSEARCH_LOG__LEVEL" in capsys.readouterr().err
