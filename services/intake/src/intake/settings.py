from pydantic import Field

from goglobal_shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    http_port: int = Field(default=8000, ge=0, le=65535)
    public_base_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://")
