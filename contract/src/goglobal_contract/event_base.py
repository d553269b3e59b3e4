"""What every event payload is: a frozen pydantic model that knows its CloudEvents `type`."""

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

TYPE_PREFIX = "hk.goglobal."


class EventPayload(BaseModel):
    """Consumers ignore fields they do not know: additive changes keep a type's `v1` (see docs/asyncapi.yaml)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    event_type: ClassVar[str]
