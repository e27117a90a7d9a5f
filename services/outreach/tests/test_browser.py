"""An officer and a resident in a real (headless) Chromium: sign in, approve a task,
record a contact and its outcome; opt out with the letter's reference and a postcode.
Screenshots are kept in tests/artefacts/."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from outreach import handlers
from outreach.adapters.store import ResidentFlag, Task
from shared.codec import decode
from shared.events import LetterSent, ResidentOptedOut
from shared.outbox import OutboxEntry
from shared.references import reference_for
from shared.topics import RESIDENT_OPTOUTS

pytestmark = pytest.mark.e2e
ARTEFACTS = Path(__file__).parent / "artefacts"


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def a_proposed_task(app, make_score) -> Task:
    score = make_score(probability=0.74)
    assert handlers.handle_score(app.state.engine, score, app.state.policy) == "create"
    with Session(app.state.engine) as session:
        return session.exec(select(Task).where(Task.resident_key == score.resident_key)).one()


def test_an_officer_signs_in_approves_a_task_and_records_the_outcome(
    page, offline_app, make_score, passwords
):
    task = a_proposed_task(offline_app, make_score)
    page.goto("/officer/tasks")
    assert "/officer/login" in page.url
    page.get_by_label("User name").fill("officer")
    page.get_by_label("Password").fill(passwords["officer"])
    shot(page, "01-sign-in")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/officer/tasks")
    shot(page, "02-task-queue")

    page.goto(f"/officer/tasks/{task.task_id}")
    assert page.get_by_text("A fall was reported to adult social care this year").is_visible()
    assert page.get_by_text("Adult social care records").is_visible()
    assert "0.74" not in page.content()  # no raw score unless asked for
    shot(page, "03-task-detail")
    page.get_by_role("button", name="Approve and send the letter").click()
    page.wait_for_url("**done=approved")
    assert page.get_by_text("Task approved").is_visible()

    letter = LetterSent(
        event_type="LetterSent",
        occurred_at=datetime.now(UTC),
        resident_key=task.resident_key,
        source="notify",
        task_id=task.task_id,
        channel="pdf",
        status="rendered",
        reference=reference_for(task.task_id),
    )
    handlers.handle_delivery(offline_app.state.engine, letter, offline_app.state.policy)
    page.reload()
    page.get_by_label("What did you talk about? (optional)").fill("Talked about balance classes")
    page.get_by_role("button", name="Record contact").click()
    page.wait_for_url("**done=contacted")
    page.get_by_label("Support offered").check()
    page.get_by_role("button", name="Record outcome").click()
    page.wait_for_url("**done=outcome")
    shot(page, "04-outcome-recorded")
    with Session(offline_app.state.engine) as session:
        stored = session.get(Task, task.task_id)
        assert stored is not None
        assert (stored.status, stored.approved_by, stored.outcome) == (
            "support_offered",
            "officer",
            "support_offered",
        )


def test_a_resident_opts_out_with_the_reference_on_their_letter_and_their_postcode(
    page, offline_app, make_score, fake_vault
):
    task = a_proposed_task(offline_app, make_score)
    handlers.approve_task(
        offline_app.state.engine, task.task_id, "officer", offline_app.state.policy
    )
    fake_vault.postcodes[task.resident_key] = "RM10 7BS"
    reference = reference_for(task.task_id)

    page.goto("/how-we-use-your-information")
    assert page.get_by_role("heading", name="What we never use").is_visible()
    shot(page, "05-how-we-use-your-information")

    page.goto("/opt-out")
    page.get_by_label("Reference on your letter").fill(reference)
    page.get_by_label("Your postcode").fill("RM10 7BT")
    page.get_by_role("button", name="Stop contact").click()
    assert page.get_by_text("We could not match this reference and postcode").first.is_visible()
    shot(page, "06-opt-out-no-match")

    page.get_by_label("Your postcode").fill("rm107bs")
    page.get_by_role("button", name="Stop contact").click()
    assert page.get_by_role("heading", name="We will not contact you again").is_visible()
    shot(page, "07-opt-out-confirmed")

    engine = offline_app.state.engine
    with Session(engine) as session:
        assert session.get(Task, task.task_id).status == "closed"  # type: ignore[union-attr]
        flags = session.exec(
            select(ResidentFlag.flag).where(ResidentFlag.resident_key == task.resident_key)
        ).all()
        assert flags == ["opted_out"]
        outgoing = session.exec(
            select(OutboxEntry).where(OutboxEntry.topic == RESIDENT_OPTOUTS.name)
        ).all()
    keys = [decode(e.payload, ResidentOptedOut).resident_key for e in outgoing]
    assert keys.count(task.resident_key) == 1
    assert fake_vault.requests[-1] == {"resident_key": task.resident_key, "postcode": "RM10 7BS"}


def test_an_unknown_reference_gets_the_same_answer_as_a_wrong_postcode(page, fake_vault):
    before = len(fake_vault.requests)
    page.goto("/opt-out")
    page.get_by_label("Reference on your letter").fill(
        "PS-"
        + uuid.uuid4()
        .hex[:8]
        .upper()
        .replace("0", "A")
        .replace("1", "B")
        .replace("8", "C")
        .replace("9", "D")
    )
    page.get_by_label("Your postcode").fill("RM10 7BS")
    page.get_by_role("button", name="Stop contact").click()
    assert page.get_by_text("We could not match this reference and postcode").first.is_visible()
    assert len(fake_vault.requests) == before


def test_a_team_lead_sees_capacity_throughput_and_outcomes(page, passwords):
    page.context.clear_cookies()
    page.goto("/officer/login")
    page.get_by_label("User name").fill("team_lead")
    page.get_by_label("Password").fill(passwords["team_lead"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/officer/tasks")
    page.get_by_role("link", name="Team").click()
    assert page.get_by_role("heading", name="Community independence team").is_visible()
    assert page.get_by_text("Taken on this week").first.is_visible()
    shot(page, "08-team-lead-view")


def test_ops_staff_see_health_replay_a_refused_change_and_open_a_trace_waterfall(
    page, offline_app, fake_vault, passwords, write_trace
):
    trace_id = write_trace(offline_app.state.settings.data_dir / "traces")
    rejection = fake_vault.refuse(
        "event 0 (h-77): unknown table housing.tenancy (expected one of housing.tenancies, "
        "housing.repairs, housing.arrears)"
    )
    page.context.clear_cookies()
    page.goto("/officer/login")
    page.get_by_label("User name").fill("ops")
    page.get_by_label("Password").fill(passwords["ops"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ops")
    assert page.get_by_role("link", name="Operations").is_visible()
    assert page.get_by_role("link", name="Tasks").count() == 0
    assert page.get_by_role("row", name="Ingest Running").is_visible()
    assert page.get_by_role("row", name="Scoring Not answering").is_visible()
    assert page.get_by_text("lag reads low there").is_visible()
    shot(page, "ops-01-overview")

    page.get_by_role("button", name=f"Replay refused change {rejection}").click()
    page.wait_for_url(f"**/ops?replay={rejection}&outcome=replayed*")
    assert page.get_by_text(f"Refused change {rejection} was replayed.").is_visible()
    assert fake_vault.replays[-1] == rejection
    shot(page, "ops-02-replayed")

    page.get_by_role("link", name="See recent traces").click()
    page.wait_for_url("**/ops/traces")
    shot(page, "ops-03-recent-traces")
    page.get_by_role("link", name="POST /v1/events").first.click()
    page.wait_for_url(f"**/ops/traces/{trace_id}")
    bars = page.locator("rect.app-waterfall__bar")
    assert bars.count() == 12  # the two detail spans are hidden
    assert page.get_by_text("2 database and web-framework spans hidden").is_visible()
    boxes = [bars.nth(i).bounding_box() for i in range(12)]
    assert all(box and box["width"] >= 1 for box in boxes)
    # Drawn left to right in the order the journey ran: each hop starts after the last.
    lefts = [box["x"] for box in boxes if box]
    assert lefts[0] < lefts[2] < lefts[5] < lefts[8] < lefts[11]
    notify_fill = bars.nth(11).evaluate("bar => getComputedStyle(bar).fill")
    assert notify_fill == "rgb(212, 53, 28)"  # notify's colour, from the stylesheet
    page.get_by_text("render letter pdf").click()
    assert page.get_by_text("letter.channel").is_visible()
    page.evaluate("document.activeElement.blur()")
    shot(page, "ops-04-trace-waterfall")
