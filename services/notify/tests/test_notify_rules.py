"""Pure rules: Notify's address rules, its API key, the settings that refuse to start, the
officer notices (Teams/Slack-shaped, nothing personal) and the daily digest."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import pytest

from notify.adapters.officer_email import email_fields
from notify.domain.address import address_problems, is_uk_postcode
from notify.domain.notices import build_digest, letter_notice, problem_notice
from notify.domain.notify_key import parse_notify_key
from notify.handlers import handle_task_changed, send_daily_digest
from notify.settings import NotifySettings

pytestmark = pytest.mark.unit
KEY = "my_test_key-26785a09-ab16-4eb0-8407-a37497a57506-3d844edf-8d35-48ac-975b-e847b4f122b0"


@pytest.mark.parametrize("postcode", ["RM10 8ZZ", "rv1 1aa", "SW1A 2AA", "EC1A1BB", "W1A 0AX"])
def test_real_uk_postcodes_pass(postcode):
    assert is_uk_postcode(postcode)


@pytest.mark.parametrize("postcode", ["NOWHERE", "12345", "RM10", "Q1 1AA", "RM10 8CZ", ""])
def test_things_that_are_not_uk_postcodes_fail(postcode):
    assert not is_uk_postcode(postcode)


def test_an_address_with_three_to_seven_good_lines_and_a_postcode_is_fine():
    assert address_problems(["Ms A Example", "10 Heathway", "RM10 8ZZ"]) == []
    assert address_problems(["Ms A Example", *"abcde", "RM10 8ZZ"]) == []


def test_each_of_notifys_address_rules_is_explained_without_quoting_the_address():
    assert address_problems(["Ms A Example", "RM10 8ZZ"]) == [
        "the address has 2 lines, and a letter needs at least 3"
    ]
    assert address_problems(["Ms A Example", *"abcdef", "RM10 8ZZ"]) == [
        "the address has 8 lines, and a letter can have at most 7"
    ]
    assert address_problems(["Ms A Example", "--", "x", "RM10 8ZZ"]) == [
        "line 2 has no letters or numbers"
    ]
    for character in '@()=[]"\\/,<>~':
        assert address_problems(["Ms A Example", f"{character}1 Road", "RM10 8ZZ"]) == [
            "line 2 starts with a character the printer cannot take"
        ]
    assert address_problems(["Ms A Example", "1 Road", "Dagenham"]) == [
        "the last line is not a UK postcode"
    ]
    problems = " ".join(address_problems(["Ms Secret Name", "(Hidden Road", "NOWHERE"]))
    assert "Secret" not in problems and "Hidden" not in problems and "NOWHERE" not in problems


def test_an_api_key_is_taken_apart_as_notify_documents():
    key = parse_notify_key(KEY)
    assert key.name == "my_test_key"
    assert key.service_id == "26785a09-ab16-4eb0-8407-a37497a57506"
    assert key.secret == "3d844edf-8d35-48ac-975b-e847b4f122b0"
    assert key.secret not in repr(key)


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"letter_channel": "govuk-notify"}, "PROACTIVE_NOTIFY_API_KEY is not set"),
        (
            {"letter_channel": "govuk-notify", "notify_api_key": "not-a-key"},
            "is not a GOV.UK Notify API key",
        ),
        (
            {
                "letter_channel": "govuk-notify",
                "notify_api_key": KEY,
                "notify_letter_mode": "template",
            },
            "PROACTIVE_NOTIFY_LETTER_TEMPLATE_ID",
        ),
        (
            {"notify_api_key": KEY, "notify_officer_email_template_id": str(uuid.uuid4())},
            "PROACTIVE_NOTIFY_OFFICER_EMAIL",
        ),
    ],
)
def test_notify_refuses_to_start_with_gov_uk_notify_half_set_up(tmp_path, env, complaint):
    settings = NotifySettings(data_dir=tmp_path, **env)
    with pytest.raises(ValueError, match=complaint):
        settings.validate_for_start()


def test_the_pdf_channel_needs_no_notify_key_and_is_the_default(tmp_path):
    settings = NotifySettings(data_dir=tmp_path)
    assert settings.letter_channel == "pdf"
    assert settings.notify_base_url == "https://api.notifications.service.gov.uk"
    settings.validate_for_start()
    NotifySettings(
        data_dir=tmp_path, letter_channel="govuk-notify", notify_api_key=KEY
    ).validate_for_start()


def test_settings_come_from_proactive_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("PROACTIVE_LETTER_CHANNEL", "govuk-notify")
    monkeypatch.setenv("PROACTIVE_NOTIFY_API_KEY", KEY)
    monkeypatch.setenv("PROACTIVE_NOTIFY_LETTER_MODE", "template")
    monkeypatch.setenv("PROACTIVE_NOTIFY_LETTER_TEMPLATE_ID", str(uuid.UUID(int=1)))
    settings = NotifySettings(data_dir=tmp_path)
    settings.validate_for_start()
    assert settings.notify_key().service_id == "26785a09-ab16-4eb0-8407-a37497a57506"
    assert KEY not in repr(settings)  # the secret never reaches a log line


def test_a_webhook_notice_is_teams_and_slack_shaped_and_carries_nothing_personal():
    notice = letter_notice(
        task_id=uuid.UUID(int=7),
        team="falls",
        due_by=date(2025, 3, 17),
        reference="PS-ABCDEFGH",
        letter_status="submitted",
        task_link="http://outreach/tasks/7",
        letter_url=None,
    )
    assert notice["text"] == (
        "Letter PS-ABCDEFGH is sent to GOV.UK Notify. Please call or visit by 17 March 2025. "
        "Task: http://outreach/tasks/7"
    )
    assert notice["summary"] and notice["reference"] == "PS-ABCDEFGH"
    problem = problem_notice(
        task_id=uuid.UUID(int=7),
        team="falls",
        reference="PS-ABCDEFGH",
        problem="address_invalid",
        detail="The last line is not a UK postcode.",
        task_link="http://outreach/tasks/7",
    )
    assert problem["text"] == (
        "Letter PS-ABCDEFGH was not sent: the address cannot be posted to. The last line is "
        "not a UK postcode. Please check the resident's details and get in touch another way. "
        "Task: http://outreach/tasks/7"
    )
    assert email_fields(problem)["text"] == problem["text"]


@dataclass
class Row:
    reference: str
    team: str
    event_type: str
    status: str


def test_the_daily_digest_counts_each_letter_once_and_lists_the_ones_needing_a_person():
    rows = [
        Row("PS-AAAAAAAA", "falls", "LetterSent", "accepted"),
        Row("PS-AAAAAAAA", "falls", "LetterSent", "received"),
        Row("PS-BBBBBBBB", "homelessness", "LetterSent", "rendered"),
        Row("PS-CCCCCCCC", "falls", "DeliveryFailed", "address_invalid"),
    ]
    digest = build_digest(date(2025, 3, 3), rows, "http://outreach/tasks")
    assert digest["letters_sent"] == 2 and digest["letters_not_sent"] == 1
    assert digest["by_team"] == {"falls": 1, "homelessness": 1}
    assert digest["needs_attention"] == [
        {"reference": "PS-CCCCCCCC", "team": "falls", "status": "address_invalid"}
    ]
    assert digest["text"].splitlines() == [
        "Proactive Support letters on Monday 3 March 2025: 2 sent, 1 not sent.",
        "- falls: 1 sent",
        "- homelessness: 1 sent",
        "Need a person to look:",
        "- PS-CCCCCCCC: not sent: the address cannot be posted to",
        "Tasks: http://outreach/tasks",
    ]


async def test_the_digest_is_built_from_the_days_deliveries_and_sent_once(kit, deps_factory):
    deps = deps_factory()
    deps.officers = kit.FakeOfficers()
    deps.officer_digest = True

    await handle_task_changed(kit.make_task(), deps)
    await handle_task_changed(kit.make_task(team="homelessness"), deps)
    assert deps.officers.notices == []  # in digest mode, no notice per letter
    today = deps.store.letter_for_task(deps.store.list_letters()[0].task_id).created_at.date()

    assert await send_daily_digest(deps, today) is True
    assert await send_daily_digest(deps, today) is False  # a restart does not send it again

    [digest] = deps.officers.notices
    assert digest["letters_sent"] == 2
    assert digest["by_team"] == {"falls": 1, "homelessness": 1}
    for personal in (kit.NAME, kit.POSTCODE, *kit.ADDRESS):
        assert personal not in str(digest)
