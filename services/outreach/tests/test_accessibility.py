"""Every officer and resident page checked against WCAG 2.2 AA by axe-core, in the real
(headless) Chromium, as a person reaches it: signed in with the right role, with tasks in
the queue, and with the errors a form shows. A page fails with each violation's rule,
impact and the elements it found. Screenshots are kept in tests/artefacts/a11y-*.png."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from outreach import handlers
from outreach.adapters.store import Task
from shared.events import LetterSent, Reason, RiskScored
from shared.references import reference_for

pytestmark = pytest.mark.e2e
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
ARTEFACTS = Path(__file__).parent / "artefacts"
# WCAG 2.0, 2.1 and 2.2 at levels A and AA: what public-sector bodies must meet.
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {runOnly: {type: "tag", values: tags}});
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map((n) => n.target.join(" ")),
  }));
}"""
# axe cannot tell whether an error summary's links lead anywhere: each must name a field.
BROKEN_ERROR_LINKS = """() => [...document.querySelectorAll('.govuk-error-summary a[href^="#"]')]
  .map((link) => link.getAttribute("href"))
  .filter((href) => !document.getElementById(href.slice(1)))"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        pytest.skip(
            "axe-core is not fetched, so the accessibility checks are skipped: run `make assets` "
            "(it needs npm) or services/outreach/scripts/fetch_axe_core.sh"
        )
    return AXE.read_text()


@dataclass
class World:
    proposed: Task
    letter_sent: Task
    reference: str
    trace_id: str
    signed_in_as: list[str | None]


def a_task(app: Any) -> Task:
    score = RiskScored(
        occurred_at=datetime.now(UTC),
        resident_key="r_" + uuid.uuid4().hex,
        source="scoring",
        model="falls",
        model_version="test",
        probability=0.7,
        band="high",
        reasons=[
            Reason(
                feature="falls_reported_12m",
                text="A fall was reported to adult social care this year",
                contribution=1.2,
                source_table="social_care.contacts",
            )
        ],
        feature_hash="h",
        triggered_by=uuid.uuid4(),
        age_band="75-84",
        ward="Abbey",
    )
    assert handlers.handle_score(app.state.engine, score, app.state.policy) == "create"
    with Session(app.state.engine) as session:
        return session.exec(select(Task).where(Task.resident_key == score.resident_key)).one()


@pytest.fixture(scope="module")
def world(offline_app: Any, fake_vault: Any, write_trace: Callable[..., str]) -> World:
    """Tasks in each state a page shows a form for, and a letter a resident can opt out with."""
    engine, policy = offline_app.state.engine, offline_app.state.policy
    proposed = a_task(offline_app)
    sent = a_task(offline_app)
    handlers.approve_task(engine, sent.task_id, "officer", policy)
    letter = LetterSent(
        event_type="LetterSent",
        occurred_at=datetime.now(UTC),
        resident_key=sent.resident_key,
        source="notify",
        task_id=sent.task_id,
        channel="pdf",
        status="rendered",
        reference=reference_for(sent.task_id),
    )
    handlers.handle_delivery(engine, letter, policy)
    opting_out = a_task(offline_app)
    handlers.approve_task(engine, opting_out.task_id, "officer", policy)
    fake_vault.postcodes[opting_out.resident_key] = "RM10 7BS"
    trace_id = write_trace(offline_app.state.settings.data_dir / "traces")
    return World(proposed, sent, reference_for(opting_out.task_id), trace_id, [None])


def sign_in(page: Any, world: World, role: str | None, passwords: dict[str, str]) -> None:
    """Sign in as `role` (None: signed out), unless the browser already is."""
    if world.signed_in_as[0] == role:
        return
    page.context.clear_cookies()
    if role is not None:
        page.goto("/officer/login")
        page.get_by_label("User name").fill(role)
        page.get_by_label("Password").fill(passwords[role])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
    world.signed_in_as[0] = role


def visit_sign_in(page: Any, _: World) -> None:
    page.goto("/officer/login")


def visit_task_queue(page: Any, _: World) -> None:
    page.goto("/officer/tasks")
    assert page.get_by_role("link", name="Task ").count() >= 2


def visit_task_detail(page: Any, world: World) -> None:
    page.goto(f"/officer/tasks/{world.proposed.task_id}")
    assert page.get_by_role("button", name="Approve and send the letter").is_visible()


def visit_reject_form_with_an_error(page: Any, world: World) -> None:
    page.goto(f"/officer/tasks/{world.proposed.task_id}")
    page.get_by_role("button", name="Reject").click()
    assert page.get_by_role("alert").get_by_text("There is a problem").is_visible()


def visit_record_outcome_form(page: Any, world: World) -> None:
    page.goto(f"/officer/tasks/{world.letter_sent.task_id}")
    assert page.get_by_role("button", name="Record outcome").is_visible()


def visit_record_outcome_form_with_an_error(page: Any, world: World) -> None:
    page.goto(f"/officer/tasks/{world.letter_sent.task_id}")
    page.get_by_role("button", name="Record outcome").click()
    assert page.get_by_role("alert").get_by_text("There is a problem").is_visible()


def visit_close_form_with_an_error(page: Any, world: World) -> None:
    page.goto(f"/officer/tasks/{world.letter_sent.task_id}")
    page.get_by_role("button", name="Close task").click()
    assert page.get_by_role("alert").get_by_text("There is a problem").is_visible()


def visit_team_lead_view(page: Any, _: World) -> None:
    page.goto("/officer/team")
    assert page.get_by_role("heading", name="Community independence team").is_visible()


def visit_error_page(page: Any, _: World) -> None:
    page.goto(f"/officer/tasks/{uuid.uuid4()}")
    assert page.get_by_role("heading", name="Page not found").is_visible()


def visit_how_we_use_your_information(page: Any, _: World) -> None:
    page.goto("/how-we-use-your-information")


def visit_opt_out(page: Any, _: World) -> None:
    page.goto("/opt-out")


def visit_opt_out_with_an_error(page: Any, _: World) -> None:
    page.goto("/opt-out")
    page.get_by_role("button", name="Stop contact").click()
    assert page.get_by_role("alert").get_by_text("There is a problem").is_visible()


def visit_opt_out_confirmation(page: Any, world: World) -> None:
    page.goto("/opt-out")
    page.get_by_label("Reference on your letter").fill(world.reference)
    page.get_by_label("Your postcode").fill("RM10 7BS")
    page.get_by_role("button", name="Stop contact").click()
    assert page.get_by_role("heading", name="We will not contact you again").is_visible()


def visit_sign_in_with_an_error(page: Any, _: World) -> None:
    page.goto("/officer/login")
    page.get_by_label("User name").fill("nobody")
    page.get_by_label("Password").fill("not a password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").get_by_text("There is a problem").is_visible()


def visit_transparency_record(page: Any, _: World) -> None:
    page.goto("/transparency")


def visit_subject_access(page: Any, _: World) -> None:
    page.goto("/officer/residents/export")


def visit_fairness(page: Any, _: World) -> None:
    page.goto("/officer/fairness")


def visit_ops_overview(page: Any, _: World) -> None:
    page.goto("/ops")
    assert page.get_by_role("row", name="Ingest Running").is_visible()


def visit_ops_traces(page: Any, world: World) -> None:
    page.goto("/ops/traces")


def visit_ops_trace_waterfall(page: Any, world: World) -> None:
    page.goto(f"/ops/traces/{world.trace_id}")
    assert page.locator("rect.app-waterfall__bar").count() > 0


# (name, who is signed in, how to get there); grouped by role so each signs in once.
PAGES: list[tuple[str, str | None, Callable[[Any, World], None]]] = [
    ("how-we-use-your-information", None, visit_how_we_use_your_information),
    ("opt-out", None, visit_opt_out),
    ("opt-out-with-an-error", None, visit_opt_out_with_an_error),
    ("opt-out-confirmation", None, visit_opt_out_confirmation),
    ("sign-in", None, visit_sign_in),
    ("sign-in-with-an-error", None, visit_sign_in_with_an_error),
    ("transparency-record", None, visit_transparency_record),
    ("task-queue", "officer", visit_task_queue),
    ("task-detail-approve-or-reject", "officer", visit_task_detail),
    ("reject-form-with-an-error", "officer", visit_reject_form_with_an_error),
    ("record-outcome-form", "officer", visit_record_outcome_form),
    ("record-outcome-form-with-an-error", "officer", visit_record_outcome_form_with_an_error),
    ("close-form-with-an-error", "officer", visit_close_form_with_an_error),
    ("error-page", "officer", visit_error_page),
    ("subject-access", "officer", visit_subject_access),
    ("team-lead-view", "team_lead", visit_team_lead_view),
    ("fairness", "team_lead", visit_fairness),
    ("ops-overview", "ops", visit_ops_overview),
    ("ops-recent-traces", "ops", visit_ops_traces),
    ("ops-trace-waterfall", "ops", visit_ops_trace_waterfall),
]


@pytest.mark.parametrize(("name", "role", "visit"), PAGES, ids=[name for name, _, _ in PAGES])
def test_the_page_meets_wcag_2_2_aa(page, axe_source, world, passwords, name, role, visit) -> None:
    sign_in(page, world, role, passwords)
    visit(page, world)
    page.screenshot(path=str(ARTEFACTS / f"a11y-{name}.png"), full_page=True)
    page.evaluate(axe_source)
    violations = page.evaluate(RUN_AXE, WCAG_22_AA)
    assert page.evaluate(BROKEN_ERROR_LINKS) == [], f"{name}: error summary links to no field"
    assert violations == [], f"{name} ({page.url}) breaks WCAG 2.2 AA:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}; at {', '.join(v['targets'])}"
        for v in violations
    )


def test_the_check_finds_what_a_page_gets_wrong(page, axe_source, world, passwords) -> None:
    """The harness itself: a field whose label is taken away is reported, with its target."""
    sign_in(page, world, None, passwords)
    page.goto("/opt-out")
    page.evaluate("document.querySelector('label[for=postcode]').remove()")
    page.evaluate(axe_source)
    violations = page.evaluate(RUN_AXE, WCAG_22_AA)
    assert [(v["id"], v["targets"]) for v in violations] == [("label", ["#postcode"])]
