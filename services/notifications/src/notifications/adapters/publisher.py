"""The publisher port (`notifications.ports.Publisher`) on Kafka: each partner's own topic, created on first use
(partners are added while the system runs), and `goglobal.notifications`."""

from aiokafka import AIOKafkaProducer

from goglobal_contract.envelope import Envelope
from goglobal_contract.partner_events import partner_topic
from goglobal_shared.kafka import KafkaSecurity, ensure_topics, publish


class KafkaPublisher:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        bootstrap_servers: str,
        security: KafkaSecurity,
        topic_prefix: str,
        notifications_topic: str,
    ) -> None:
        self.producer = producer
        self.bootstrap_servers = bootstrap_servers
        self.security = security
        self.topic_prefix = topic_prefix
        self.notifications_topic = notifications_topic
        self.known: set[str] = set()

    async def to_partner(self, partner_id: str, envelope: Envelope) -> None:
        topic = partner_topic(self.topic_prefix, partner_id)
        if topic not in self.known:
            await ensure_topics(self.bootstrap_servers, [topic], security=self.security)
            self.known.add(topic)
        await publish(self.producer, topic, envelope)

    async def notification(self, envelope: Envelope) -> None:
        await publish(self.producer, self.notifications_topic, envelope)
