"""Every matching replica follows the whole `goglobal.partners` topic (no consumer group: each replica needs
every partner), from the beginning, into its in-memory index. The topic is compacted, so it holds the
latest version of every partner for as long as the directory lives."""

import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from pydantic import ValidationError

from goglobal_contract.envelope import InvalidEvent, from_kafka
from goglobal_contract.events import PartnerUpserted
from goglobal_shared.dead_letters import FailedRecord, send_to_dead_letters
from goglobal_shared.kafka import PLAINTEXT, KafkaSecurity
from goglobal_shared.periodic import ConsumerLoop, LoopOwner, each_record
from matching.engine import DirectoryIndex, Partner, partner_from_event

log = logging.getLogger(__name__)


class DirectoryFollower(LoopOwner):
    """Polls on a `ConsumerLoop`: a failure ends the loop and the process, and the restart reads the topic again."""

    def __init__(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, index: DirectoryIndex) -> None:
        self.consumer = consumer
        self.producer = producer
        self.index = index
        self.caught_up = False
        self.loop: ConsumerLoop = ConsumerLoop("partner directory follower", consumer, each_record(self._apply))

    async def catch_up(self, timeout_s: float = 60.0) -> None:
        """Reads up to the end of the topic as it was at start, so the first match sees the whole directory."""
        deadline = time.monotonic() + timeout_s
        while not self.consumer.assignment():
            await self.loop.poll()
            if time.monotonic() > deadline:
                raise TimeoutError("no partition of the partners topic was assigned")
        ends = await self.consumer.end_offsets(list(self.consumer.assignment()))
        while await self._behind(ends):
            await self.loop.poll()
            if time.monotonic() > deadline:
                raise TimeoutError("the partner directory did not load in time")
        self.caught_up = True
        log.info("partner directory loaded: %d partners", len(self.index))

    async def _behind(self, ends: dict[Any, int]) -> bool:
        for tp, end in ends.items():
            if await self.consumer.position(tp) < end:
                return True
        return False

    async def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            partner, version = partner_of(record)
        except InvalidEvent as exc:
            # Every replica sees the record; the original topic/partition/offset headers identify repeats.
            failed = FailedRecord(
                record.topic, record.partition, record.offset, record.key, record.value, list(record.headers)
            )
            await send_to_dead_letters(self.producer, failed, exc, attempts=1)
            log.warning("partner record dead-lettered: %s", exc, extra={"offset": record.offset})
            return
        self.index.upsert(partner, version)


def partner_of(record: ConsumerRecord[bytes, bytes]) -> tuple[Partner, int]:
    """The partner a record describes, and its version; InvalidEvent if matching cannot use it."""
    envelope = from_kafka(record.key, record.value, list(record.headers))
    if not isinstance(envelope.data, PartnerUpserted):
        raise InvalidEvent(f"{envelope.type} does not belong on the partners topic")
    try:
        return partner_from_event(envelope.data), envelope.data.version
    except ValidationError as exc:
        # Valid for the event schema (notifications takes it), not for matching's rules (e.g. no category): the
        # replica keeps the partner's previous version, if any, rather than a partner it cannot match.
        raise InvalidEvent(f"partner {envelope.data.partner_id!r} breaks matching's rules: {exc}") from exc


def make_follower_consumer(
    bootstrap_servers: str, topic: str, client_id: str, security: KafkaSecurity = PLAINTEXT
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **security.client_kwargs(),
    )
