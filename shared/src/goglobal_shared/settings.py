"""Configuration from environment variables prefixed `GOGLOBAL_` (see README, "Configuration")."""

import sys
from typing import Literal, Self, TypeVar

from pydantic import Field, FilePath, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from goglobal_shared.kafka import KafkaSecurity, SaslMechanism, SecurityProtocol

ENV_PREFIX = "GOGLOBAL_"
EX_CONFIG = 78  # sysexits.h: a configuration error, so a supervisor can tell it from a crash


class ServiceSettings(BaseSettings):
    """Settings every service has; each service subclasses it with its own defaults and extras."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    service_name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=3)
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = Field(default=None, min_length=1)
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: FilePath | None = None
    kafka_ssl_certfile: FilePath | None = None
    kafka_ssl_keyfile: FilePath | None = None
    mongodb_uri: str = Field(default="mongodb://127.0.0.1:27017/", pattern=r"^mongodb(\+srv)?://")
    mongodb_database: str = Field(default="", pattern=r"^[A-Za-z0-9_-]{0,60}$")
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,100}$")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_timeout_s: float = Field(default=20.0, gt=0, le=300)

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Self:
        """A half-configured connection would fail at the first broker contact, far from its cause: refuse it here."""
        sasl = self.kafka_security_protocol.startswith("SASL_")
        given = [self.kafka_sasl_mechanism, self.kafka_sasl_username, self.kafka_sasl_password]
        if sasl and any(value is None for value in given):
            raise ValueError(
                f"GOGLOBAL_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs GOGLOBAL_KAFKA_SASL_MECHANISM, "
                "GOGLOBAL_KAFKA_SASL_USERNAME and GOGLOBAL_KAFKA_SASL_PASSWORD"
            )
        if not sasl and any(value is not None for value in given):
            raise ValueError(
                "GOGLOBAL_KAFKA_SASL_* settings need GOGLOBAL_KAFKA_SECURITY_PROTOCOL SASL_SSL or SASL_PLAINTEXT"
            )
        files = [self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile]
        if not self.kafka_security_protocol.endswith("SSL") and any(f is not None for f in files):
            raise ValueError("GOGLOBAL_KAFKA_SSL_* files need GOGLOBAL_KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("GOGLOBAL_KAFKA_SSL_CERTFILE and GOGLOBAL_KAFKA_SSL_KEYFILE go together")
        return self

    @property
    def kafka_security(self) -> KafkaSecurity:
        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=password,
            ssl_cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None,
            ssl_certfile=str(self.kafka_ssl_certfile) if self.kafka_ssl_certfile else None,
            ssl_keyfile=str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None,
        )

    @property
    def database(self) -> str:
        return self.mongodb_database or f"goglobal_{self.service_name}"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def referrals_topic(self) -> str:
        return self.topic("goglobal.referrals")

    @property
    def partners_topic(self) -> str:
        return self.topic("goglobal.partners")

    @property
    def enterprises_topic(self) -> str:
        return self.topic("goglobal.enterprises")

    @property
    def topic_configs(self) -> dict[str, dict[str, str]]:
        """The partners topic is the directory's source of truth for matching replicas: compacted, kept forever."""
        return {self.partners_topic: {"cleanup.policy": "compact"}}

    @property
    def consumer_group(self) -> str:
        return f"{self.topic_prefix}goglobal-{self.service_name}"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


_Settings = TypeVar("_Settings", bound=ServiceSettings)


def configuration_problems(error: ValidationError) -> list[str]:
    """One line per refused setting, naming its variable and never echoing a value (it may be a secret)."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False, include_context=False):
        field = ".".join(str(part) for part in problem["loc"])
        name = f"{ENV_PREFIX}{field.upper()}" if field else "settings"
        lines.append(f"{name}: {problem['msg']}")
    return lines


def load_settings(settings_class: type[_Settings]) -> _Settings:
    """The settings from the environment, or a clear message on stderr and exit 78 without a traceback."""
    try:
        return settings_class()
    except ValidationError as error:
        problems = "\n".join(f"  {line}" for line in configuration_problems(error))
        print(f"{settings_class.__name__}: the configuration is refused:\n{problems}", file=sys.stderr)
        raise SystemExit(EX_CONFIG) from None
    except SettingsError as error:  # a list or map variable that is not JSON: pydantic-settings names the field
        # Its message names the variable's field and never the value; the cause (which may quote it) is dropped.
        print(f"{settings_class.__name__}: the configuration is refused:\n  {_first_line(error)}", file=sys.stderr)
        raise SystemExit(EX_CONFIG) from None


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
