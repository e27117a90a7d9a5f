"""The Faust agent and the flush timer: transport in, handler calls out, nothing else."""

from __future__ import annotations

from typing import Any

import faust

from scoring.handlers import ScoringService


def register_agents(
    app: faust.App,
    events: faust.TopicT,
    optouts: faust.TopicT,
    service: ScoringService,
    *,
    flush_every_s: float,
) -> faust.types.AgentT:
    @app.agent(events, name="score-resident-events")
    async def score_resident_events(stream: faust.StreamT[Any]) -> None:
        # One event at a time: the table may only be written inside stream iteration.
        async for value in stream:
            await service.record(value)

    @app.agent(optouts, name="forget-opted-out-residents")
    async def forget_opted_out_residents(stream: faust.StreamT[Any]) -> None:
        async for value in stream:
            service.opt_out(value)

    @app.timer(interval=30.0, name="reload-models")
    async def reload_models() -> None:
        # A new model file in the folder is picked up here, or refused with its reason.
        service.models.reload()

    @app.timer(interval=flush_every_s, name="flush-scores")
    async def flush_scores() -> None:
        await service.flush()

    return score_resident_events
