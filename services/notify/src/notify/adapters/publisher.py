"""Publishes delivery events to `notify.deliveries.v1` through the shared Kafka helpers."""

from __future__ import annotations

from typing import Protocol

from aiokafka import AIOKafkaProducer

from shared import metrics
from shared.events import LetterSent
from shared.kafka import make_producer, publish
from shared.topics import NOTIFY_DELIVERIES


class DeliveryPublisher(Protocol):
    async def publish(self, event: LetterSent) -> None: ...


class KafkaDeliveryPublisher:
    """Starts its producer on first use, so that notify starts (not ready) while the broker
    is away: a publish that cannot reach it raises, and the event waits in the outbox."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = make_producer(self._bootstrap)
            try:
                await producer.start()
            except Exception:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, event: LetterSent) -> None:
        await publish(await self._started(), NOTIFY_DELIVERIES.name, event)
        metrics.events_out.add(1, {"messaging.destination.name": NOTIFY_DELIVERIES.name})
        metrics.letters.add(
            1, {"event_type": event.event_type, "channel": event.channel, "status": event.status}
        )
