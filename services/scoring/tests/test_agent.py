"""The Faust agent itself, run with no broker through `agent.test_context()`."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from scoring.app import build_app
from scoring.settings import ScoringSettings
from shared.codec import encode


@pytest.mark.unit
async def test_the_agent_folds_each_event_into_the_table_and_counts_it(
    tmp_path: Path, build: ModuleType
) -> None:
    settings = ScoringSettings(data_dir=tmp_path, scoring_batch_size=1000)
    scoring = build_app(settings, broker="kafka://127.0.0.1:9", store="memory://")
    history = build.high_risk_history()
    async with scoring.agent.test_context() as agent:
        for event in history:
            await agent.put(encode(event), key=event.resident_key.encode())
        await agent.put(encode(history[0]), key=history[0].resident_key.encode())
    stats = scoring.service.counters()
    assert stats["events_consumed"] == len(history) + 1
    assert stats["events_applied"] == len(history)
    assert stats["duplicates_ignored"] == 1
    assert stats["residents"] == 1
    assert stats["scores_pending"] == 1
