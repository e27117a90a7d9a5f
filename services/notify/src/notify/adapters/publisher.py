"""Publishes delivery events to `notify.deliveries.v1` through the shared Kafka helpers."""

from __future__ import annotations

from typing import Protocol

from aiokafka import AIOKafkaProducer

from shared import metrics
from shared.events import LetterSent
from shared.kafka import publish
from shared.topics import NOTIFY_DELIVERIES


class DeliveryPublisher(Protocol):
    async def publish(self, event: LetterSent) -> None: ...


class KafkaDeliveryPublisher:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def publish(self, event: LetterSent) -> None:
        await publish(self._producer, NOTIFY_DELIVERIES.name, event)
        metrics.events_out.add(1, {"messaging.destination.name": NOTIFY_DELIVERIES.name})
        metrics.letters.add(
            1, {"event_type": event.event_type, "channel": event.channel, "status": event.status}
        )
