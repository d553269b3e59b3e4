import ssl

import pytest
from pydantic import ValidationError

from goglobal_shared.settings import EX_CONFIG, load_settings
from intake.settings import IntakeSettings
from matching.settings import MatchingSettings
from notifications.settings import NotificationsSettings


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


SASL = {
    "GOGLOBAL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "GOGLOBAL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "GOGLOBAL_KAFKA_SASL_USERNAME": "goglobal-intake",
    "GOGLOBAL_KAFKA_SASL_PASSWORD": "kafka-password-not-for-logs",
}


def test_kafka_defaults_to_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    assert IntakeSettings().kafka_security.client_kwargs() == {"security_protocol": "PLAINTEXT"}


def test_kafka_sasl_over_tls_reaches_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in SASL.items():
        monkeypatch.setenv(var, value)
    kwargs = IntakeSettings().kafka_security.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("goglobal-intake", SASL[PASSWORD])
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["ssl_context"].verify_mode is ssl.CERT_REQUIRED


PASSWORD = "GOGLOBAL_KAFKA_SASL_PASSWORD"


@pytest.mark.parametrize(
    "env",
    [
        {"GOGLOBAL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},  # no credentials
        {k: v for k, v in SASL.items() if k != PASSWORD},
        {k: v for k, v in SASL.items() if k != "GOGLOBAL_KAFKA_SECURITY_PROTOCOL"},  # credentials over plaintext
        {"GOGLOBAL_KAFKA_SSL_CAFILE": __file__},  # a CA file without TLS
        {"GOGLOBAL_KAFKA_SECURITY_PROTOCOL": "SSL", "GOGLOBAL_KAFKA_SSL_CAFILE": "/no/such/ca.pem"},
        {"GOGLOBAL_KAFKA_SECURITY_PROTOCOL": "SSL", "GOGLOBAL_KAFKA_SSL_CERTFILE": __file__},  # no key
        {"GOGLOBAL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", **SASL, "GOGLOBAL_KAFKA_SASL_MECHANISM": "GSSAPI"},
    ],
    ids=[
        "no-credentials",
        "no-password",
        "credentials-in-clear",
        "cafile-without-tls",
        "missing-cafile",
        "cert-no-key",
        "gssapi",
    ],
)
def test_incomplete_kafka_security_is_refused(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError):
        IntakeSettings()


def test_a_refused_configuration_exits_78_and_never_echoes_a_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOGLOBAL_WEBHOOK_MASTER_KEY", "a-secret-that-is-too-short")
    monkeypatch.setenv("GOGLOBAL_HTTP_PORT", "70000")
    with pytest.raises(SystemExit) as exit_:
        load_settings(NotificationsSettings)
    assert exit_.value.code == EX_CONFIG
    err = capsys.readouterr().err
    assert "GOGLOBAL_WEBHOOK_MASTER_KEY" in err and "GOGLOBAL_HTTP_PORT" in err
    assert "a-secret-that-is-too-short" not in err and "70000" not in err


def test_a_list_setting_that_is_not_json_exits_78_with_its_field_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOGLOBAL_WEBHOOK_MASTER_KEY", "0123456789abcdef0123456789abcdef-secret")
    monkeypatch.setenv("GOGLOBAL_RETRY_SCHEDULE_S", "0,10,60")  # a list needs JSON: [0, 10, 60]
    with pytest.raises(SystemExit) as exit_:
        load_settings(NotificationsSettings)
    assert exit_.value.code == EX_CONFIG
    err = capsys.readouterr().err
    assert "retry_schedule_s" in err and "0,10,60" not in err and "Traceback" not in err
