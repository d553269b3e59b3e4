from goglobal_shared.settings import ServiceSettings
from pydantic import Field


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    http_port: int = Field(default=8002, ge=0, le=65535)
