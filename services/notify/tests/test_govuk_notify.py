"""Letters and officer emails through GOV.UK Notify, against the fake Notify in conftest.py.

The fake checks the JWT and every payload rule the API documentation states, over real
HTTP, so these tests go through the official client exactly as production does.
"""

from __future__ import annotations

import time

import pytest

from notify.adapters.channels import NotifyLetterChannel
from notify.adapters.database import LetterStore
from notify.adapters.govuk_notify import GovukNotify, NotifyUnauthorised, NotifyUnavailable
from notify.adapters.officer_email import NotifyEmailOfficerNotifier
from notify.domain.notify_key import parse_notify_key
from notify.handlers import handle_optout, handle_task_changed, poll_letter_statuses
from shared.database import make_engine
from shared.events import ResidentOptedOut
from shared.references import reference_for

pytestmark = pytest.mark.integration
LETTER_TEMPLATE_ID = "64415853-cb86-4cc4-b597-2aaa94ef8c39"
EMAIL_TEMPLATE_ID = "f33517ff-2a88-4f6e-b855-c550268ce08a"


def notify_api(fake_notify, key=None, **options) -> GovukNotify:
    settings = {"timeout_s": 5.0, "attempts": 3, "backoff_s": 0.01} | options
    return GovukNotify(parse_notify_key(key or fake_notify.key), fake_notify.url, **settings)


@pytest.fixture
def notify_deps(deps_factory, fake_notify, kit):
    def build(mode="precompiled", vault=None, api=None, **options):
        deps = deps_factory(vault)
        deps.channel = NotifyLetterChannel(
            api or notify_api(fake_notify, **options),
            mode=mode,
            template_id=LETTER_TEMPLATE_ID if mode == "template" else None,
        )
        deps.poll_interval_s = 0  # every poll finds every letter due
        deps.officers = kit.FakeOfficers()
        return deps

    return build


def published(deps):
    return [(e.event_type, e.channel, e.status) for e in deps.publisher.events]


async def test_a_precompiled_letter_goes_to_notify_once_as_our_pdf_and_is_polled_to_received(
    kit, notify_deps, fake_notify
):
    deps = notify_deps()
    task = kit.make_task()
    reference = reference_for(task.task_id)

    await handle_task_changed(task, deps)
    await handle_task_changed(task, deps)  # redelivered: nothing more is sent

    [letter] = fake_notify.fake.letters()
    assert letter["reference"] == reference  # our printed reference: nothing personal
    assert letter["postage"] == "second"
    assert letter["line_1"] == kit.NAME and letter[f"line_{len(kit.ADDRESS) + 2}"] == kit.POSTCODE
    text = fake_notify.fake.pdf_text(letter["id"])
    assert "How are things going for you at the moment?" in text
    assert reference in text and kit.NAME in text
    assert deps.store.letter_for_task(task.task_id).status == "submitted"
    assert published(deps) == [("OfficerNotified", "webhook", "sent")]
    assert deps.officers.notices[0]["letter_url"] is None  # no PDF is kept for Notify letters

    await poll_letter_statuses(deps)
    await poll_letter_statuses(deps)
    assert await poll_letter_statuses(deps) == 0  # final: no longer asked about

    assert published(deps)[1:] == [
        ("LetterSent", "govuk_notify", "accepted"),
        ("LetterSent", "govuk_notify", "received"),
    ]
    assert deps.store.letter_for_task(task.task_id).status == "received"
    assert deps.store.stats()["letters_received"] == 1
    assert len(fake_notify.fake.letters()) == 1


async def test_a_templated_letter_sends_the_address_lines_and_the_template_fields(
    kit, notify_deps, fake_notify
):
    deps = notify_deps(mode="template")
    task = kit.make_task()

    await handle_task_changed(task, deps)

    [letter] = fake_notify.fake.letters()
    fields = letter["personalisation"]
    assert [fields[f"address_line_{n}"] for n in range(1, 6)] == [
        kit.NAME,
        *kit.ADDRESS,
        kit.POSTCODE,
    ]
    assert fields["name"] == kit.NAME
    assert fields["reference"] == reference_for(task.task_id)
    assert "strength and balance" in fields["offers"]
    assert letter["id"] not in fake_notify.fake.pdfs


async def test_an_address_notify_would_refuse_is_flagged_to_the_officer_and_not_sent(
    kit, notify_deps, fake_notify
):
    contact = kit.vault_contact() | {"address_lines": ["=1 High Street"], "postcode": "NOWHERE"}
    deps = notify_deps(vault=kit.fake_vault({kit.RESIDENT_KEY: contact}))
    task = kit.make_task()

    await handle_task_changed(task, deps)

    assert fake_notify.fake.letters() == []
    letter = deps.store.letter_for_task(task.task_id)
    assert letter.status == "failed"
    assert letter.failure_reason == (
        "address_invalid: line 2 starts with a character the printer cannot take; "
        "the last line is not a UK postcode"
    )
    assert published(deps) == [
        ("DeliveryFailed", "govuk_notify", "address_invalid"),
        ("OfficerNotified", "webhook", "problem_flagged"),
    ]
    [notice] = deps.officers.notices
    assert notice["kind"] == "problem"
    assert "not sent" in notice["text"] and "last line is not a UK postcode" in notice["text"]
    for personal in ("High Street", "NOWHERE", kit.NAME):
        assert personal not in str(notice)


async def test_server_errors_and_rate_limits_are_retried_without_sending_twice(
    kit, notify_deps, fake_notify
):
    fake = fake_notify.fake
    fake.fail_next(500, "Exception", "Internal server error", path="/v2/notifications/letter")
    fake.fail_next(
        429,
        "RateLimitError",
        "Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds",
        path="/v2/notifications/letter",
        headers={"Retry-After": "0.2"},
    )
    deps = notify_deps(attempts=4)
    task = kit.make_task()

    await handle_task_changed(task, deps)

    assert len(fake.letters()) == 1
    posts = [path for method, path, _ in fake.requests if method == "POST"]
    lookups = [query for method, path, query in fake.requests if path == "/v2/notifications"]
    assert posts == ["/v2/notifications/letter"] * 3
    # Before each repeat, Notify is asked whether the last try got through after all.
    assert lookups == [{"template_type": "letter", "reference": reference_for(task.task_id)}] * 2
    assert deps.store.letter_for_task(task.task_id).status == "submitted"


async def test_a_send_that_timed_out_is_found_by_its_reference_instead_of_sent_again(
    kit, notify_deps, fake_notify
):
    fake = fake_notify.fake
    fake.stall_letters.set()  # Notify takes the letter but its answer never comes
    deps = notify_deps(timeout_s=0.5)
    task = kit.make_task()

    await handle_task_changed(task, deps)

    assert len(fake.letters()) == 1
    delivery = deps.store.delivery_for_task(task.task_id)
    assert delivery.notification_id == fake.letters()[0]["id"]
    assert delivery.send_attempts == 1


async def test_a_key_notify_does_not_know_stops_sending_without_dropping_the_letter(
    kit, notify_deps, fake_notify
):
    wrong = f"proactive_test-{'26785a09-ab16-4eb0-8407-a37497a57506'}-{'0' * 8}-0000-0000-0000-{'0' * 12}"
    deps = notify_deps(key=wrong)
    task = kit.make_task()

    with pytest.raises(NotifyUnauthorised, match="Invalid token: API key not found"):
        await handle_task_changed(task, deps)

    assert fake_notify.fake.letters() == []
    assert deps.store.letter_for_task(task.task_id).status == "pending"
    assert deps.publisher.events == []


async def test_a_refusal_is_recorded_with_notifys_reason_and_no_personal_data(
    kit, notify_deps, fake_notify
):
    fake_notify.fake.templates[LETTER_TEMPLATE_ID]["placeholders"].append("appointment")
    deps = notify_deps(mode="template")
    task = kit.make_task()

    await handle_task_changed(task, deps)

    letter = deps.store.letter_for_task(task.task_id)
    assert letter.status == "failed"
    assert (
        letter.failure_reason
        == "notify_rejected: BadRequestError: Missing personalisation: appointment"
    )
    assert published(deps)[0] == ("DeliveryFailed", "govuk_notify", "notify_rejected")
    assert deps.officers.notices[0]["kind"] == "problem"


async def test_notify_failing_again_and_again_opens_the_circuit_breaker(fake_notify):
    fake = fake_notify.fake
    fake.fail_next(500, "Exception", "Internal server error", times=10)
    api = notify_api(fake_notify, attempts=2, breaker_failures=2, breaker_reset_s=60)

    with pytest.raises(NotifyUnavailable, match="circuit breaker is open"):
        await api.notification("740e5834-3a29-46b4-9a6f-16142fde533a")
    asked = len(fake.requests)
    started = time.monotonic()
    with pytest.raises(NotifyUnavailable, match="circuit breaker is open"):
        await api.notification("740e5834-3a29-46b4-9a6f-16142fde533a")
    assert len(fake.requests) == asked  # while open, Notify is left alone
    print(f"an open breaker answered in {time.monotonic() - started:.3f}s")


async def test_the_daily_limit_is_not_retried(fake_notify):
    fake = fake_notify.fake
    fake.fail_next(429, "TooManyRequestsError", "Exceeded send limits (letter: 20000) for today")
    api = notify_api(fake_notify)
    with pytest.raises(NotifyUnavailable, match="daily limit"):
        await api.notification("740e5834-3a29-46b4-9a6f-16142fde533a")
    assert len(fake.requests) == 1


async def test_a_failure_notify_reports_later_is_recorded_published_and_flagged(
    kit, notify_deps, fake_notify
):
    deps = notify_deps()
    task = kit.make_task()
    fake_notify.fake.next_statuses[reference_for(task.task_id)] = ["validation-failed"]

    await handle_task_changed(task, deps)
    await poll_letter_statuses(deps)

    letter = deps.store.letter_for_task(task.task_id)
    assert letter.status == "failed"
    assert letter.failure_reason.startswith("validation-failed: ")
    assert published(deps)[1:] == [
        ("DeliveryFailed", "govuk_notify", "validation-failed"),
        ("OfficerNotified", "webhook", "problem_flagged"),
    ]
    assert [n["kind"] for n in deps.officers.notices] == ["letter", "problem"]
    assert await poll_letter_statuses(deps) == 0


async def test_an_opt_out_before_sending_cancels_the_letter(kit, notify_deps, fake_notify):
    calls: list[str] = []
    deps = notify_deps(vault=kit.fake_vault({kit.RESIDENT_KEY: kit.vault_contact()}, calls=calls))
    task = kit.make_task()
    optout = ResidentOptedOut(
        occurred_at="2025-03-04T10:00:00Z", resident_key=kit.RESIDENT_KEY, source="outreach"
    )

    await handle_optout(optout, deps)
    await handle_optout(optout, deps)  # redelivered: harmless
    await handle_task_changed(task, deps)

    assert fake_notify.fake.letters() == [] and calls == []
    assert deps.store.letter_for_task(task.task_id).status == "cancelled"
    assert published(deps) == [("DeliveryFailed", "govuk_notify", "cancelled")]
    assert deps.officers.notices == []
    assert deps.store.stats()["letters_cancelled"] == 1


async def test_officers_can_be_told_by_a_notify_email_with_no_personal_data(
    kit, deps_factory, fake_notify
):
    deps = deps_factory()
    deps.officers = NotifyEmailOfficerNotifier(
        notify_api(fake_notify), EMAIL_TEMPLATE_ID, "proactive-team@riverside.example"
    )
    task = kit.make_task()

    await handle_task_changed(task, deps)

    [email] = fake_notify.fake.emails()
    assert email["email_address"] == "proactive-team@riverside.example"
    assert email["reference"] == reference_for(task.task_id)
    assert email["personalisation"]["text"].startswith(f"Letter {reference_for(task.task_id)}")
    for personal in (kit.NAME, kit.POSTCODE, *kit.ADDRESS):
        assert personal not in str(email)
    assert deps.publisher.events[-1].channel == "govuk_notify"
    assert deps.publisher.events[-1].event_type == "OfficerNotified"


async def test_the_once_only_delivery_record_works_on_postgresql(
    postgres_url, kit, notify_deps, fake_notify
):
    store = LetterStore(make_engine(postgres_url))
    store.create_tables()
    try:
        deps = notify_deps()
        deps.store = store
        task = kit.make_task()
        fake_notify.fake.stall_letters.set()
        deps.channel.api._timeout_s = 0.5  # the first POST times out; Notify has it anyway

        await handle_task_changed(task, deps)
        fake_notify.fake.stall_letters.clear()
        await handle_task_changed(task, deps)
        while await poll_letter_statuses(deps):
            pass

        assert len(fake_notify.fake.letters()) == 1
        delivery = store.delivery_for_task(task.task_id)
        assert (delivery.state, delivery.notify_status) == ("final", "received")
        statuses = [e.status for e in store.events_for_task(task.task_id)]
        # The fake moves a letter on with time, so a slow poll may not see `accepted`.
        assert statuses[0] == "sent"
        assert statuses[-1] == "received"
        assert statuses in (["sent", "accepted", "received"], ["sent", "received"])
        assert store.unpublished_events() == []
    finally:
        store.engine.dispose()
