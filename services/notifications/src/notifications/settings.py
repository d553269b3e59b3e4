from pydantic import Field, SecretStr

from goglobal_shared.settings import ServiceSettings

STANDARD_WEBHOOKS_SCHEDULE_S = [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0]


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    http_port: int = Field(default=8002, ge=0, le=65535)
    webhook_master_key: SecretStr = Field(min_length=32, description="derives every partner's signing secret")
    webhook_timeout_s: float = Field(default=15.0, gt=0, le=60)
    retry_schedule_s: list[float] = Field(
        default_factory=lambda: list(STANDARD_WEBHOOKS_SCHEDULE_S),
        min_length=1,
        max_length=20,
        description="delay before each attempt, the Standard Webhooks schedule by default",
    )
    retry_time_scale: float = Field(default=1.0, gt=0, le=1, description="shrinks every delay (tests)")
    retry_jitter: float = Field(default=0.1, ge=0, le=0.5)
    endpoint_disable_after_s: float = Field(default=5 * 86400.0, gt=0, description="failing this long disables it")
    dispatcher_interval_s: float = Field(default=0.5, gt=0, le=60)
    allow_private_webhook_targets: bool = Field(
        default=False, description="deliver to loopback and private addresses (development and tests only)"
    )
    smtp_host: str | None = Field(default=None, description="no host: e-mail is not sent")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str = "GoGlobal Referral Network <no-reply@goglobal.hk>"
    smtp_start_tls: bool = False
    portal_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://")
