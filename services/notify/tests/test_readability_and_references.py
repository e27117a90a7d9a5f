"""Reading ease and our reference codes."""

from __future__ import annotations

import uuid

import pytest

from notify.domain.readability import count_syllables, flesch_reading_ease
from shared.references import is_reference, reference_for

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("word", "syllables"),
    [
        ("home", 1),
        ("phone", 1),
        ("the", 1),
        ("called", 1),
        ("balance", 2),
        ("people", 2),
        ("useful", 2),
        ("statement", 2),
        ("family", 3),
        ("council", 2),
        ("information", 4),
        ("independent", 4),
        ("available", 4),
    ],
)
def test_syllables_are_counted_well_enough_for_plain_english(word, syllables):
    assert count_syllables(word) == syllables


def test_short_plain_sentences_read_easily_and_officialese_does_not():
    plain = (
        "We would like to hear how you are. You do not have to do anything. Call us if you like."
    )
    officialese = (
        "Notwithstanding the aforementioned considerations, the municipal authority "
        "anticipates comprehensive interdepartmental collaboration regarding preventative "
        "interventions, subject to the availability of appropriate organisational resources."
    )
    assert flesch_reading_ease(plain) > 80
    assert flesch_reading_ease(officialese) < 0


def test_empty_text_has_no_reading_ease():
    assert flesch_reading_ease("") == 0.0


def test_a_reference_is_stable_for_a_task():
    task_id = uuid.UUID("0b7c6f0e-8d3a-4a8e-9d57-0e2f1c3b4a5d")
    assert reference_for(task_id) == reference_for(uuid.UUID(str(task_id)))
    assert is_reference(reference_for(task_id))


def test_references_differ_between_tasks_and_never_contain_the_task_id():
    task_ids = [uuid.uuid4() for _ in range(2000)]
    references = {reference_for(task_id) for task_id in task_ids}
    assert len(references) == len(task_ids)
    for task_id in task_ids[:50]:
        reference = reference_for(task_id)
        assert task_id.hex[:6].upper() not in reference


def test_a_reference_is_short_and_easy_to_read_out():
    reference = reference_for(uuid.uuid4())
    assert len(reference) == 11
    assert not set(reference[3:]) & set("0189")


def test_other_strings_are_not_references():
    for text in ("PS-abcdefgh", "PS-ABCDEFG", "../../etc/passwd", "PS-ABCDEFG1"):
        assert not is_reference(text)
