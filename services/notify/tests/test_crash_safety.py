"""A letter is never sent twice, even when notify is killed (-9) between the send and its
acknowledgement: the real `python -m notify` process, a real broker, the fake Notify."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from shared.events import LetterSent
from shared.kafka import make_producer, publish
from shared.references import reference_for
from shared.topics import NOTIFY_DELIVERIES, OUTREACH_TASKS

pytestmark = pytest.mark.integration


def start_notify(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "notify"], env=env, stdout=output, stderr=subprocess.STDOUT
        )


def wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"notify exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"notify never became ready:\n{log.read_text()[-3000:]}")


async def approve(bootstrap: str, task) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await publish(producer, OUTREACH_TASKS.name, task)
    finally:
        await producer.stop()


def test_a_notify_killed_between_send_and_acknowledgement_sends_exactly_one_letter(
    kafka_bootstrap, tmp_path, kit, serve, fake_notify, topic_reader
):
    fake = fake_notify.fake
    fake.stall_letters.set()  # Notify records the letter, then never answers the POST
    # A resident of its own: other tests read the same topics from the start.
    resident_key = f"r_{uuid.uuid4().hex}"
    vault = serve(kit.fake_vault({resident_key: kit.vault_contact()}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        notify_port = probe.getsockname()[1]
    env = os.environ | {
        "PROACTIVE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PROACTIVE_DATA_DIR": str(tmp_path),
        "PROACTIVE_SERVICE_TOKEN": kit.SERVICE_TOKEN,
        "PROACTIVE_INGEST_URL": vault.url,
        "PROACTIVE_NOTIFY_PORT": str(notify_port),
        "PROACTIVE_NOTIFY_CONSUMER_GROUP": f"notify-crash-{uuid.uuid4().hex[:8]}",
        "PROACTIVE_LETTER_CHANNEL": "govuk-notify",
        "PROACTIVE_NOTIFY_BASE_URL": fake_notify.url,
        "PROACTIVE_NOTIFY_API_KEY": fake_notify.key,
        "PROACTIVE_NOTIFY_POLL_INTERVAL_S": "0.2",
        "PROACTIVE_TRACES_TO_FILE": "false",
        "PROACTIVE_LOG_LEVEL": "INFO",
    }
    url = f"http://127.0.0.1:{notify_port}"
    log = tmp_path / "notify.log"
    task = kit.make_task(resident_key=resident_key)
    reference = reference_for(task.task_id)

    first = start_notify(env, log)
    try:
        wait_until_ready(first, url, log)
        asyncio.run(approve(kafka_bootstrap, task))
        assert fake.letter_posts_received.wait(60), log.read_text()[-3000:]
        os.kill(first.pid, signal.SIGKILL)  # between Notify taking the letter and our record
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert len(fake.letters()) == 1
    requests_before_restart = len(fake.requests)

    fake.stall_letters.clear()
    fake.release_stalled.set()
    second = start_notify(env, log)
    try:
        wait_until_ready(second, url, log)
        [record] = topic_reader(
            NOTIFY_DELIVERIES.name,
            lambda r: (
                (event := LetterSent.model_validate_json(r.value)).task_id == task.task_id
                and event.status == "received"
            ),
            want=1,
            timeout_s=90,
        )
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()

    assert len(fake.letters()) == 1, "the letter went to Notify twice"
    after_restart = fake.requests[requests_before_restart:]
    assert ("GET", "/v2/notifications", {"template_type": "letter", "reference": reference}) in (
        after_restart
    )
    assert not [r for r in after_restart if r[0] == "POST"]
    assert LetterSent.model_validate_json(record.value).channel == "govuk_notify"
