"""What the letter says, checked against what residents asked for."""

from __future__ import annotations

import re
from datetime import date
from itertools import combinations

import jinja2
import pytest

from notify.domain.letter import Contact, build_letter, parse_blocks, wording_problems
from notify.domain.readability import flesch_reading_ease
from shared.references import reference_for

pytestmark = pytest.mark.unit

MODEL_SETS = [
    list(c) for n in (1, 2, 3) for c in combinations(["falls", "homelessness", "frailty"], n)
]
ALL_TABLES = [
    "people.residents",
    "housing.tenancies",
    "housing.rent_accounts",
    "revenues.council_tax_accounts",
    "benefits.claims",
    "social_care.contacts",
    "social_care.care_packages",
    "health.ambulance_callouts",
    "health.hospital_discharges",
]


def letter_for(kit, council, template, contact, **task_options):
    task = kit.make_task(**task_options)
    return build_letter(
        task, contact, council, template, reference_for(task.task_id), date(2025, 3, 3)
    )


@pytest.mark.parametrize("models", MODEL_SETS, ids="+".join)
def test_a_letter_never_mentions_risk_probability_score_or_a_percentage(
    kit, council, template, contact, models
):
    letter = letter_for(kit, council, template, contact, models=models, tables=ALL_TABLES)
    text = letter.full_text().lower()
    for word in ("risk", "probability", "score", "likely", "predict", "vulnerable", "frail"):
        assert word not in text
    assert not re.search(r"\d\s*%", text)
    assert "percent" not in text
    assert wording_problems(letter) == []


@pytest.mark.parametrize("models", MODEL_SETS, ids="+".join)
def test_the_letter_body_reads_as_plain_english(kit, council, template, contact, models):
    letter = letter_for(kit, council, template, contact, models=models, tables=ALL_TABLES)
    assert flesch_reading_ease(letter.body_text()) >= 60


def test_a_letter_starts_by_asking_how_things_are_going(kit, council, template, contact):
    letter = letter_for(kit, council, template, contact)
    paragraphs = [block.text for block in letter.blocks if block.kind == "paragraph"]
    assert paragraphs[0] == f"Dear {kit.NAME},"
    assert paragraphs[1].startswith("How are things going for you at the moment?")


def test_why_we_write_is_framed_as_an_offer_built_from_the_models(kit, council, template, contact):
    falls = letter_for(kit, council, template, contact, models=["falls"]).body_text()
    housing = letter_for(kit, council, template, contact, models=["homelessness"]).body_text()
    frailty = letter_for(kit, council, template, contact, models=["frailty"]).body_text()
    assert "We are getting in touch with some residents who might find" in falls
    assert "strength and balance" in falls and "home safety check" in falls
    assert "help with rent" in housing and "money advice" in housing and "housing advice" in housing
    assert "strength and balance" not in housing
    assert "stay well and independent at home" in frailty


def test_the_letter_says_who_will_get_in_touch_by_when_and_how_to_say_no(
    kit, council, template, contact
):
    text = letter_for(kit, council, template, contact, team="falls").body_text()
    assert (
        "Someone from our Healthy Ageing team will call you or visit you by Monday 17 March 2025"
        in text
    )
    assert "If you would rather we did not get in touch, that is fine." in text


def test_the_letter_offers_several_ways_in(kit, council, template, contact):
    letter = letter_for(kit, council, template, contact)
    text = letter.full_text()
    assert council.phone in text
    assert council.hub.name in text and "1 Market Square" in text
    assert all(hours in text for hours in council.hub.hours)
    assert council.web_form in text
    slips = [block for block in letter.blocks if block.kind == "slip"]
    assert len(slips) == 1
    assert [child.kind for child in slips[0].children].count("tickbox") == 3


def test_the_clear_print_box_says_what_we_looked_at_never_use_keep_and_how_to_opt_out(
    kit, council, template, contact
):
    letter = letter_for(
        kit,
        council,
        template,
        contact,
        tables=["housing.rent_accounts", "health.hospital_discharges"],
    )
    boxes = [block for block in letter.blocks if block.kind == "box"]
    assert len(boxes) == 1 and boxes[0].text.startswith("Clear print")
    box_text = " ".join(child.text for child in boxes[0].children)
    assert "your rent account" in box_text
    assert "hospital stays the NHS shares with us" in box_text
    assert "your council tax account" not in box_text  # only the records behind this task
    assert "ethnicity" in box_text and "social media" in box_text
    assert "two years" in box_text
    assert letter.reference in box_text
    assert council.transparency_url in box_text
    assert "member of staff checked" in box_text


def test_the_letter_prints_our_reference_and_offers_other_languages_and_formats(
    kit, council, template
):
    polish = Contact(kit.NAME, tuple(kit.ADDRESS), kit.POSTCODE, "pl")
    letter = letter_for(kit, council, template, polish)
    text = letter.full_text()
    assert text.count(letter.reference) >= 3  # what happens next, clear print, reply slip
    assert "We can send you this letter in Polish." in text
    assert "large print" in text and "braille" in text and "easy read" in text


def test_an_unknown_team_code_is_shown_as_our_own_team(kit, council, template, contact):
    text = letter_for(kit, council, template, contact, team="hsg_opt_2b").body_text()
    assert "Someone from our Proactive Support team will call you" in text
    assert "hsg_opt_2b" not in text


def test_a_resident_whose_name_is_an_unkind_word_still_gets_a_letter(kit, council, template):
    mr_risk = Contact("Mr Percival Risk", ("1 Score Street",), "RV1 1AA")
    letter = letter_for(kit, council, template, mr_risk)
    assert wording_problems(letter) == []


def test_the_wording_check_catches_a_template_that_tells_people_their_risk(kit, council, contact):
    unkind = jinja2.Template("Dear {{ name }},\n\nYour risk score is 87% so we predict trouble.\n")
    task = kit.make_task()
    letter = build_letter(task, contact, council, unkind, "PS-AAAAAAAA", date(2025, 3, 3))
    assert wording_problems(letter) == ["87%", "predict", "risk", "score"]


def test_an_address_longer_than_the_window_allows_is_folded_into_seven_lines():
    contact = Contact("Mr A Example", ("a", "b", "c", "d", "e", "f", "g"), "rv1 1aa")
    lines = contact.recipient_lines()
    assert len(lines) == 7
    assert lines[0] == "Mr A Example" and lines[-1] == "RV1 1AA"
    assert lines[1:-1] == ("a", "b", "c", "d", "e, f, g")


def test_contact_details_stay_out_of_reprs(kit, contact):
    assert kit.NAME not in repr(contact)
    assert kit.POSTCODE not in repr(contact)


def test_the_template_markup_becomes_blocks():
    blocks = parse_blocks(
        "# Title\n\nOne\ntwo.\n\n## Head\n- a\n[ ] tick\n::: box Box title\nInside.\n:::\n"
    )
    assert [(b.kind, b.text) for b in blocks] == [
        ("title", "Title"),
        ("paragraph", "One two."),
        ("heading", "Head"),
        ("bullet", "a"),
        ("tickbox", "tick"),
        ("box", "Box title"),
    ]
    assert blocks[-1].children[0].text == "Inside."
    with pytest.raises(ValueError, match="not closed"):
        parse_blocks("::: box Open\ntext\n")
