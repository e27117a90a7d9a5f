"""Training strips synthetic rows the way ingest does, so the features a model learns from
are the features the scoring worker will see from ingest's `resident.events.v1`."""

from __future__ import annotations

import pytest

from proactive.borough import generate_borough, ordered_rows

pytestmark = pytest.mark.unit


def test_training_publishes_the_same_attributes_as_ingests_source_mapping() -> None:
    from ingest.domain.mapping import load_mapping
    from scoring.training import change_like_ingest

    mapping = load_mapping()
    borough = generate_borough(0.005, seed=21)
    checked = 0
    for row in ordered_rows(borough.residents):
        ours = change_like_ingest(row)
        if row.op == "delete":
            assert mapping.validate_key(row.table, row.record) == ours.record_key
            assert ours.attributes == {}
            continue
        validated = mapping.validate_row(row.table, dict(row.record))
        theirs = mapping.public_attributes(row.table, validated, row.occurred_at.date())
        assert ours.attributes == theirs, row.table
        checked += 1
    assert checked > 1000
