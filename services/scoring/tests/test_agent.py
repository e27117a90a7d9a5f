"""The Faust agent itself, run with no broker through `agent.test_context()`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

from scoring.app import build_app
from scoring.handlers import Outgoing
from scoring.settings import ScoringSettings
from shared.codec import decode, encode
from shared.events import RiskScored
from shared.topics import RISK_SCORES


@pytest.mark.unit
async def test_the_agent_folds_each_event_into_the_table_and_scores_it_within_the_batch_wait(
    tmp_path: Path, build: ModuleType
) -> None:
    settings = ScoringSettings(
        data_dir=tmp_path, scoring_batch_size=1000, scoring_batch_max_wait_s=0.05
    )
    scoring = build_app(settings, broker="kafka://127.0.0.1:9", store="memory://")
    published: list[Outgoing] = []

    async def publish(records: Sequence[Outgoing]) -> None:
        published.extend(records)

    scoring.service.publish = publish
    history = build.high_risk_history()
    async with scoring.agent.test_context() as agent:
        for event in history:
            await agent.put(encode(event), key=event.resident_key.encode())
        await agent.put(encode(history[0]), key=history[0].resident_key.encode())
        # Far fewer than the batch size (1,000) wait, and no timer runs in the test: the
        # first of them set a deadline, and it is what flushes them.
        await asyncio.sleep(0.3)
    stats = scoring.service.counters()
    assert stats["events_consumed"] == len(history) + 1
    assert stats["events_applied"] == len(history)
    assert stats["duplicates_ignored"] == 1
    assert stats["residents"] == 1
    assert stats["scores_pending"] == 0
    assert stats["events_unacknowledged"] == 0
    scores = [
        decode(record.value, RiskScored) for record in published if record.topic == RISK_SCORES.name
    ]
    assert {score.model for score in scores} == {"falls", "homelessness", "frailty"}
    assert {score.triggered_by for score in scores} <= {event.event_id for event in history}
