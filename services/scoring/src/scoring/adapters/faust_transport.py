"""Faust's aiokafka transport with the consumer's fetch wait taken from our settings.

Faust creates its worker consumer with `fetch_max_wait_ms=1500`, fixed in its code. On
Apache Kafka that only bounds an idle poll: the broker answers a fetch as soon as a record
arrives. The embedded broker (Tansu 0.6) answers a fetch only when its wait is over
(measured: a record produced while a fetch waits reaches the consumer after about half the
wait on average, 215 ms at a 500 ms wait, 6 ms at 10 ms), so with Faust's value an event
could sit for up to 1.5 s before scoring saw it. `kafka_fetch_max_wait_ms` sets it instead.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka


def transport_with_fetch_wait(fetch_max_wait_ms: int) -> type[faust_aiokafka.Transport]:
    """A Faust transport class whose worker consumer fetches with this wait."""

    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # Read by aiokafka when the consumer starts its fetcher (aiokafka 0.14, pinned).
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class PromptConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class Transport(faust_aiokafka.Transport):
        Consumer = PromptConsumer

    return Transport
