from pydantic import Field

from goglobal_shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    http_port: int = Field(default=8002, ge=0, le=65535)
