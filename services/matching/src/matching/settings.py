from pathlib import Path

from pydantic import Field

from goglobal_shared.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    service_name: str = "matching"
    http_port: int = Field(default=8001, ge=0, le=65535)
    seed_partners_file: Path | None = Field(
        default=None,
        validation_alias="GOGLOBAL_MATCHING_SEED_PARTNERS_FILE",
        description="JSON list of partners loaded into the directory at start (demo and tests)",
    )
