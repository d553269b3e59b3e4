import pytest
from pydantic import ValidationError

from intake.settings import IntakeSettings
from matching.settings import MatchingSettings


def test_defaults_and_topic_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOGLOBAL_TOPIC_PREFIX", "staging.")
    settings = IntakeSettings()
    assert settings.referrals_topic == "staging.goglobal.referrals"
    assert settings.database == "goglobal_intake"
    assert settings.consumer_group == "staging.goglobal-intake"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("GOGLOBAL_HTTP_PORT", "70000"),
        ("GOGLOBAL_MONGODB_URI", "postgres://db"),
        ("GOGLOBAL_TOPIC_PREFIX", "bad prefix!"),
        ("GOGLOBAL_LOG_LEVEL", "LOUD"),
    ],
)
def test_invalid_configuration_is_refused(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError, match=var.removeprefix("GOGLOBAL_").lower()):
        IntakeSettings()


def test_matching_seed_file_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOGLOBAL_MATCHING_SEED_PARTNERS_FILE", "/tmp/partners.json")
    assert str(MatchingSettings().seed_partners_file) == "/tmp/partners.json"
