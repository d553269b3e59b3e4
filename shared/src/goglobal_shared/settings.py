"""Configuration from environment variables prefixed `GOGLOBAL_` (see README, "Configuration")."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "GOGLOBAL_"


class ServiceSettings(BaseSettings):
    """Settings every service has; each service subclasses it with its own defaults and extras."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    service_name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=3)
    mongodb_uri: str = Field(default="mongodb://127.0.0.1:27017/", pattern=r"^mongodb(\+srv)?://")
    mongodb_database: str = Field(default="", pattern=r"^[A-Za-z0-9_-]{0,60}$")
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,100}$")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_timeout_s: float = Field(default=20.0, gt=0, le=300)

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
