from pydantic import Field, SecretStr

from goglobal_shared.settings import ServiceSettings
from intake.auth.cache import MAX_TTL_S

API_KEYS_RETENTION_MS = 86_400_000  # one day


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    http_port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    max_page_size: int = Field(default=100, ge=1, le=1000)
    funnel_sample_interval_s: float = Field(
        default=60.0,
        ge=1.0,
        le=3600.0,
        description="how often the goglobal_referrals gauge is recounted: a scan of every request, so not often",
    )
    service_urls: dict[str, str] = Field(
        default_factory=lambda: {
            "intake": "http://127.0.0.1:8000",
            "matching": "http://127.0.0.1:8001",
            "notifications": "http://127.0.0.1:8002",
        },
        description="where the console reads each service's /readyz, /metrics and internal views (JSON)",
    )
    allow_private_webhook_targets: bool = Field(
        default=False, description="accept webhook URLs on loopback and private addresses (development and tests)"
    )
    webhook_master_key: SecretStr = Field(min_length=32, description="derives every partner's signing secret")
    webhook_secret_overlap_s: float = Field(
        default=86400.0, ge=0, le=30 * 86400.0, description="how long the previous secret signs after a rotation"
    )
    api_key_cache_ttl_s: float = Field(
        default=5.0,
        ge=0,
        le=MAX_TTL_S,
        description="how long a replica trusts a verified API key without reading it again; 0 reads it every time. "
        "A revocation is broadcast at once; without Kafka, other replicas may accept the key this long",
    )
    api_key_cache_max_entries: int = Field(
        default=10_000, ge=1, le=1_000_000, description="verified API keys kept per replica (least recently used go)"
    )
    enterprise_cache_ttl_s: float = Field(
        default=5.0,
        ge=0,
        le=MAX_TTL_S,
        description="how old the enterprise a submission reads may be (a change made on another replica shows in "
        "new submissions within it; one made here at once); 0 reads it every time. Offers and acceptances always "
        "read it afresh",
    )

    @property
    def api_keys_topic(self) -> str:
        """API key revocations, read by every replica from the end: a day of history is plenty."""
        return self.topic("goglobal.api-keys")

    @property
    def topic_configs(self) -> dict[str, dict[str, str]]:
        return {**super().topic_configs, self.api_keys_topic: {"retention.ms": str(API_KEYS_RETENTION_MS)}}
