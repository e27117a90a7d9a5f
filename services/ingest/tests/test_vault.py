import pytest

from ingest.domain.vault import decide_vault_access, display_name

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("token_valid", "task_id", "approved", "known", "expected"),
    [
        (False, "t1", {"t1"}, True, 401),
        (True, None, {"t1"}, True, 403),
        (True, "t2", {"t1"}, True, 403),
        (True, "t1", {"t1"}, False, 404),
        (True, "t1", {"t1"}, True, 200),
    ],
)
def test_the_vault_opens_only_for_a_trusted_service_and_an_approved_task(
    token_valid, task_id, approved, known, expected
):
    decision = decide_vault_access(
        token_valid=token_valid, task_id=task_id, approved_task_ids=approved, known=known
    )
    assert decision.status_code == expected
    assert decision.granted is (expected == 200)


def test_a_resident_with_no_name_on_record_is_addressed_as_resident():
    assert display_name(None, None) == "Resident"
    assert display_name("Ada", "Example") == "Ada Example"
