"""The handler for outreach task events, with a fake vault and hand-written fakes."""

from __future__ import annotations

import httpx
import pytest

from notify.adapters.database import LetterStore
from notify.adapters.vault import VaultUnauthorised
from notify.handlers import handle_task_changed
from shared.database import make_engine
from shared.references import reference_for

pytestmark = pytest.mark.unit


async def test_an_approved_task_gets_one_letter_and_one_letter_sent_event(kit, deps_factory):
    deps = deps_factory()
    task = kit.make_task()

    await handle_task_changed(task, deps)

    reference = reference_for(task.task_id)
    assert (deps.channel.folder / f"{reference}.pdf").exists()
    [event] = deps.publisher.events
    assert event.event_type == "LetterSent"
    assert (event.channel, event.status, event.reference) == ("pdf", "rendered", reference)
    assert event.task_id == task.task_id and event.resident_key == task.resident_key
    assert event.source == "notify"
    assert deps.store.stats()["letters_rendered"] == 1


async def test_the_same_approval_delivered_twice_renders_and_sends_once(kit, deps_factory):
    calls: list[str] = []
    deps = deps_factory(kit.fake_vault({kit.RESIDENT_KEY: kit.vault_contact()}, calls=calls))
    deps.officers = kit.FakeOfficers()
    task = kit.make_task()

    await handle_task_changed(task, deps)
    await handle_task_changed(task, deps)

    assert deps.channel.sent == 1
    assert len(calls) == 1  # the vault is asked once: one re-identification, one audit entry
    assert [e.event_type for e in deps.publisher.events] == ["LetterSent", "OfficerNotified"]
    assert len(deps.officers.notices) == 1
    assert len(deps.store.list_letters()) == 1
    assert deps.store.stats() == {
        "tasks_seen": 1,
        "letters_rendered": 1,
        "notifications_sent": 1,
        "deliveries_failed": 0,
        "letters_cancelled": 0,
        "letters_received": 0,
        "dead_letters": 0,
    }


async def test_a_proposed_task_gets_no_letter(kit, deps_factory):
    calls: list[str] = []
    deps = deps_factory(kit.fake_vault({kit.RESIDENT_KEY: kit.vault_contact()}, calls=calls))

    await handle_task_changed(kit.make_task("TaskCreated"), deps)
    await handle_task_changed(kit.make_task("TaskStatusChanged"), deps)

    assert calls == []
    assert deps.channel.sent == 0
    assert deps.publisher.events == []
    assert deps.store.list_letters() == []
    assert deps.store.stats()["tasks_seen"] == 2


async def test_a_vault_refusal_records_a_failed_delivery_and_renders_nothing(kit, deps_factory):
    deps = deps_factory(
        kit.fake_vault({kit.RESIDENT_KEY: kit.vault_contact()}, refused={kit.RESIDENT_KEY})
    )
    deps.officers = kit.FakeOfficers()
    task = kit.make_task()

    await handle_task_changed(task, deps)

    letter = deps.store.letter_for_task(task.task_id)
    assert letter is not None and letter.status == "failed"
    assert letter.failure_reason == "contact_refused: the vault refused contact details (403)"
    assert not list(deps.channel.folder.glob("*.pdf"))
    [event] = deps.publisher.events
    assert (event.event_type, event.status) == ("DeliveryFailed", "contact_refused")
    assert deps.officers.notices == []
    assert deps.store.stats()["deliveries_failed"] == 1


async def test_an_unknown_resident_records_a_failed_delivery(kit, deps_factory):
    deps = deps_factory(kit.fake_vault({}))
    task = kit.make_task()
    await handle_task_changed(task, deps)
    letter = deps.store.letter_for_task(task.task_id)
    assert letter is not None and letter.failure_reason.startswith("contact_not_found")


async def test_transient_vault_errors_are_retried(kit, deps_factory):
    answers = iter([503, "connect", 200])

    def vault(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if answer == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if answer == 503:
            return httpx.Response(503)
        assert request.headers["Authorization"] == f"Bearer {kit.SERVICE_TOKEN}"
        assert request.url.params["task_id"] == str(task.task_id)
        return httpx.Response(200, json=kit.vault_contact())

    task = kit.make_task()
    deps = deps_factory(transport=httpx.MockTransport(vault))
    await handle_task_changed(task, deps)
    assert deps.store.letter_for_task(task.task_id).status == "rendered"


async def test_a_refusal_is_asked_again_because_ingest_may_not_have_seen_the_approval_yet(
    kit, deps_factory
):
    answers = iter([403, 403, 200])

    def vault(request: httpx.Request) -> httpx.Response:
        if next(answers) == 403:
            return httpx.Response(403, json={"detail": "no approved outreach task"})
        return httpx.Response(200, json=kit.vault_contact())

    task = kit.make_task()
    deps = deps_factory(transport=httpx.MockTransport(vault))
    await handle_task_changed(task, deps)
    assert deps.store.letter_for_task(task.task_id).status == "rendered"


async def test_a_wrong_service_token_stops_processing_instead_of_dropping_the_letter(
    kit, deps_factory
):
    deps = deps_factory(kit.fake_vault({kit.RESIDENT_KEY: kit.vault_contact()}, token="other"))
    task = kit.make_task()
    with pytest.raises(VaultUnauthorised):
        await handle_task_changed(task, deps)
    assert deps.store.letter_for_task(task.task_id).status == "pending"
    assert deps.publisher.events == []


async def test_a_redelivery_after_a_failed_publish_publishes_without_rendering_again(
    kit, deps_factory
):
    deps = deps_factory()
    deps.publisher.fail_next = 1
    task = kit.make_task()

    with pytest.raises(ConnectionError):
        await handle_task_changed(task, deps)
    await handle_task_changed(task, deps)

    assert deps.channel.sent == 1
    assert [e.event_type for e in deps.publisher.events] == ["LetterSent"]


async def test_a_delivery_event_has_the_same_id_whenever_it_is_published(
    kit, deps_factory, tmp_path
):
    other_store = LetterStore(make_engine(f"sqlite:///{tmp_path / 'other.db'}"))
    other_store.create_tables()
    first, second = deps_factory(), deps_factory(the_store=other_store)
    task = kit.make_task()
    await handle_task_changed(task, first)
    await handle_task_changed(task, second)
    assert first.publisher.events[0].event_id == second.publisher.events[0].event_id


async def test_the_officer_notice_carries_no_personal_data(kit, deps_factory):
    deps = deps_factory()
    deps.officers = kit.FakeOfficers()
    task = kit.make_task(team="homelessness")

    await handle_task_changed(task, deps)

    [notice] = deps.officers.notices
    assert notice["task_id"] == str(task.task_id)
    assert notice["team"] == "homelessness"
    assert notice["due_by"] == "2025-03-17"
    assert notice["reference"] == reference_for(task.task_id)
    assert notice["link"].endswith(f"/tasks/{task.task_id}")
    flat = str(notice)
    for personal in (kit.NAME, kit.POSTCODE, *kit.ADDRESS, "Amara"):
        assert personal not in flat
    assert deps.publisher.events[-1].event_type == "OfficerNotified"
    assert deps.publisher.events[-1].channel == "webhook"


async def test_names_and_addresses_never_reach_the_database(kit, deps_factory, tmp_path):
    deps = deps_factory()
    await handle_task_changed(kit.make_task(), deps)
    deps.store.engine.dispose()
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("notify.db*"))
    assert stored  # the database is there and has been written
    for personal in (kit.NAME, kit.POSTCODE, *kit.ADDRESS):
        assert personal.encode() not in stored
