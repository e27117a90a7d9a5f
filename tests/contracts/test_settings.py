import pytest

from shared.settings import DEV_SERVICE_TOKEN, CommonSettings

pytestmark = pytest.mark.unit


def test_settings_come_from_proactive_environment_variables(monkeypatch):
    monkeypatch.setenv("PROACTIVE_KAFKA_BOOTSTRAP", "broker:9999")
    assert CommonSettings().kafka_bootstrap == "broker:9999"


def test_outside_dev_the_published_secrets_stop_start_up():
    settings = CommonSettings(environment="production")
    with pytest.raises(ValueError, match="PROACTIVE_SERVICE_TOKEN"):
        settings.refuse_dev_secrets(PROACTIVE_SERVICE_TOKEN=DEV_SERVICE_TOKEN)
    settings.refuse_dev_secrets(PROACTIVE_SERVICE_TOKEN="a-long-real-secret-from-the-vault")


def test_in_dev_the_development_secrets_are_allowed():
    CommonSettings(environment="dev").refuse_dev_secrets(PROACTIVE_SERVICE_TOKEN=DEV_SERVICE_TOKEN)
