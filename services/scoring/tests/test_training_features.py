"""One feature path: the features a model is trained on are the features the worker serves.

Offline, `scoring.training.features_of` folds each synthetic resident's history. Online,
the same history goes through the running worker's own entry point, `ScoringService.record`,
as the encoded `resident.events.v1` records ingest would publish, and the features are
read back from the state the worker stored. The two must agree to the last bit.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence

import numpy as np
import pytest

from scoring.adapters.onnx_models import ModelRegistry
from scoring.domain.features import feature_hash, feature_vector
from scoring.domain.state import ResidentState, read_stored
from scoring.handlers import Outgoing, ScoringService
from scoring.settings import DEFAULT_MODELS_DIR
from shared.codec import encode
from shared.events import ResidentEventRecorded
from shared.inbound import RECORD_KEYS

pytest.importorskip("sklearn")


def _resident_key(person_ref: str) -> str:
    return "r_" + uuid.uuid5(uuid.NAMESPACE_URL, person_ref).hex


def _as_published(row, person_ref: str) -> ResidentEventRecorded:
    """What ingest publishes for one source row: the personal columns gone, the person
    reference replaced by the resident key (training strips rows the same way)."""
    from scoring.training import change_like_ingest

    change = change_like_ingest(row)
    return ResidentEventRecorded(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, row.source_event_id),
        occurred_at=row.occurred_at,
        resident_key=_resident_key(person_ref),
        source="synthetic",
        table=row.table,
        record_key=str(row.record[RECORD_KEYS[row.table]]),
        change=row.op,
        attributes=dict(change.attributes),
    )


async def _online_features(borough, rows_in_order) -> dict[str, np.ndarray]:
    published: list[Outgoing] = []

    async def publish(records: Sequence[Outgoing]) -> None:
        published.extend(records)

    table: dict = {}
    service = ScoringService(
        table, ModelRegistry.load(DEFAULT_MODELS_DIR), publish, batch_size=1_000_000
    )
    for row, person_ref in rows_in_order:
        await service.record(encode(_as_published(row, person_ref)))
    assert service.stats.events_rejected == 0
    return {
        r.person_ref: feature_vector(_state(table[_resident_key(r.person_ref)]))
        for r in borough.residents
    }


@pytest.fixture(scope="module")
def borough():
    from proactive.borough import generate_borough

    return generate_borough(0.01, seed=41)


def _by_time(borough) -> list:
    """Every row of every resident, in the order the source systems would send them."""
    keyed = [
        (row.occurred_at, n, k, row, r.person_ref)
        for n, r in enumerate(borough.residents)
        for k, row in enumerate(r.rows)
    ]
    keyed.sort(key=lambda item: item[:3])
    return [(row, person) for *_, row, person in keyed]


@pytest.mark.unit
async def test_the_same_history_gives_identical_features_offline_and_online(borough) -> None:
    from scoring.training import features_of

    offline = features_of(borough)
    online = await _online_features(borough, _by_time(borough))
    assert len(online) == len(borough.residents) > 1000
    for index, resident in enumerate(borough.residents):
        assert feature_hash(online[resident.person_ref]) == feature_hash(offline[index]), (
            resident.person_ref,
            online[resident.person_ref],
            offline[index],
        )
    # The history is varied enough that the comparison means something (an eviction
    # date is too rare to be sure of in a hundredth of the borough).
    assert (offline.std(axis=0) > 0).sum() >= offline.shape[1] - 1


@pytest.mark.unit
async def test_shuffled_and_redelivered_events_give_the_same_features(borough) -> None:
    from scoring.training import features_of

    offline = features_of(borough)
    rows = _by_time(borough)
    jumbled = rows + random.Random(3).sample(rows, len(rows) // 5)  # some arrive twice
    random.Random(4).shuffle(jumbled)
    online = await _online_features(borough, jumbled)
    for index, resident in enumerate(borough.residents):
        assert feature_hash(online[resident.person_ref]) == feature_hash(offline[index])


def _state(value: bytes) -> ResidentState:
    stored = read_stored(value)
    assert stored is not None
    return ResidentState.from_json(stored)
