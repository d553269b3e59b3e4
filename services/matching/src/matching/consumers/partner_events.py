"""Keeps matching's directory in step with intake's partner directory."""

from goglobal_shared.envelope import Envelope
from goglobal_shared.events import PartnerUpserted
from matching.adapters.partner_directory import PartnerDirectory, from_event


async def on_partner_upserted(envelope: Envelope, directory: PartnerDirectory) -> None:
    event = envelope.data
    assert isinstance(event, PartnerUpserted)
    await directory.apply(from_event(event), event.version)
