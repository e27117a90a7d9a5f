"""A small synthetic borough: residents, their life events in the council's source systems,
and what happened to them next.

No real resident data exists in this project, so the models are trained, and the demo
is run, on people made up here. Every name, address, postcode, date of birth and UPRN is
fake and looks it (streets from a word list, postcodes ending in ``Z?``, UPRNs starting
``9000``).

The latent causal structure, stated so that anyone can check what the models can and
cannot learn:

- ``frailty`` (a continuous latent, rising with age and living alone, plus noise) drives
  falls reported to social care, ambulance fall call-outs, fall and frailty admissions,
  mobility contacts and care packages; it also sets an eFI-like frailty index today.
- ``strain`` (financial and housing pressure: tenure, ward, age, plus noise) drives rent
  and council tax arrears, enforcement, possession notices, evictions, benefit caps and
  suspensions.
- Outcomes depend on the latents *and* on some observed events, with their own noise:
  a fall needing help within 12 months (frailty, recent falls), a homelessness duty
  within 6 months (strain, possession notice, eviction date, temporary accommodation,
  benefit cap), moving to moderate or severe frailty (eFI ≥ 0.24) within 12 months
  (frailty, frailty admissions; only for residents below 0.24 today).
- Ethnicity and sex do not enter the latent structure; ethnicity varies with age only, as
  in the borough's census profile. That lets the model cards' fairness tables show what
  a model does to groups it was never told about.

Base rates are tuned to the figures in the handbook's FACTS.md (adults only: the resident
index here holds people aged 18 and over).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import numpy as np

from shared.events import Scalar
from shared.inbound import SourceChange, SourceTable

DEFAULT_AS_OF = date(2025, 6, 30)
HISTORY_DAYS = 730

WARDS: tuple[str, ...] = (
    "Abbey",
    "Alibon",
    "Becontree",
    "Chadwell Heath",
    "Eastbrook & Rush Green",
    "Eastbury",
    "Gascoigne",
    "Goresbrook",
    "Heath",
    "Longbridge",
    "Mayesbrook",
    "Northbury",
    "Parsloes",
    "Thames View",
    "Valence",
    "Village",
    "Whalebone",
)
# How much harder life is, on average, in each ward (a small part of `strain`).
_WARD_PRESSURE = np.array(
    [0.3, 0.1, 0.2, -0.2, -0.1, 0.0, 0.35, 0.15, 0.1, -0.05, 0.2, -0.1, 0.05, 0.25, 0.0, 0.1, -0.3]
)
_WARD_POSTCODE = {
    "Abbey": "IG11",
    "Eastbury": "IG11",
    "Gascoigne": "IG11",
    "Longbridge": "IG11",
    "Northbury": "IG11",
    "Thames View": "IG11",
    "Becontree": "RM8",
    "Heath": "RM8",
    "Parsloes": "RM8",
    "Valence": "RM8",
    "Alibon": "RM9",
    "Goresbrook": "RM9",
    "Mayesbrook": "RM9",
    "Village": "RM9",
    "Chadwell Heath": "RM10",
    "Eastbrook & Rush Green": "RM10",
    "Whalebone": "RM10",
}
_TOWN = {"IG11": "Barking", "RM8": "Dagenham", "RM9": "Dagenham", "RM10": "Dagenham"}

ETHNICITIES = ("white", "asian", "black", "mixed", "other")
SEXES = ("female", "male", "unknown")
TENURES = (
    "owner_occupier",
    "private_rented",
    "secure",
    "introductory",
    "temporary_accommodation",
    "private_rented_sector_lease",
)
COUNCIL_TENURES = frozenset(TENURES[2:])
_LANGUAGES = ("en", "en", "en", "en", "en", "en", "en", "ro", "bn", "ur", "pl", "lt", "pa", "so")
_GIVEN = (
    "Alex", "Sam", "Jo", "Chris", "Pat", "Robin", "Jamie", "Morgan", "Ade", "Amina", "Bola",
    "Daria", "Elena", "Farah", "Grace", "Hassan", "Ion", "Joy", "Kemi", "Liam", "Maya", "Nia",
    "Omar", "Priya", "Rosa", "Tomasz", "Uma", "Vera", "Wendy", "Yusuf", "Zara", "Mihai",
)  # fmt: skip
_FAMILY = (
    "Example", "Sample", "Specimen", "Testwell", "Placeholder", "Fictional", "Madeup",
    "Synthetic", "Notreal", "Dummy", "Mockton", "Pretend", "Imagine", "Invent",
)  # fmt: skip
_STREETS = (
    "Sample Street", "Example Road", "Fictional Close", "Imaginary Avenue", "Synthetic Way",
    "Pretend Gardens", "Placeholder Lane", "Madeup Crescent", "Testing Terrace", "Dummy Drive",
)  # fmt: skip


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class SourceRow:
    """One native change to one row of a source table, before it becomes a SourceChange."""

    source_event_id: str
    table: SourceTable
    op: Literal["upsert", "delete"]
    occurred_at: datetime
    record: dict[str, Scalar]


@dataclass
class Resident:
    person_ref: str
    age: int
    sex: str
    ethnicity: str
    ward: str
    lives_alone: bool
    tenure: str
    deceased: bool
    # The latents and the outcome probabilities they imply; kept for tests and the demo.
    frailty: float
    strain: float
    frailty_index: float
    risk: dict[str, float]
    labels: dict[str, int]
    eligible: dict[str, bool]
    rows: list[SourceRow] = field(default_factory=list)


@dataclass
class Borough:
    seed: int
    as_of: date
    residents: list[Resident]

    def label_array(self, outcome: str) -> np.ndarray:
        return np.array([r.labels[outcome] for r in self.residents], dtype=np.int8)

    def base_rates(self, min_age: int = 18) -> dict[str, float]:
        """Share of eligible residents aged `min_age`+ with each outcome."""
        rates = {}
        for outcome in OUTCOMES:
            chosen = [r for r in self.residents if r.age >= min_age and r.eligible[outcome]]
            rates[outcome] = sum(r.labels[outcome] for r in chosen) / max(1, len(chosen))
        return rates


OUTCOMES = ("falls", "homelessness", "frailty")


def _stamp(as_of: date, days_before: float) -> datetime:
    """A UTC time `days_before` days before the end of `as_of` (fractions give the hour)."""
    end = datetime(as_of.year, as_of.month, as_of.day, 18, 0, tzinfo=UTC)
    return (end - timedelta(days=days_before)).replace(microsecond=0)


class _RowWriter:
    """Collects one resident's rows with ids that depend only on seed, person and order."""

    def __init__(self, seed: int, index: int, as_of: date) -> None:
        self.prefix = f"syn{seed}-{index:06d}"
        self.as_of = as_of
        self.rows: list[SourceRow] = []

    def add(
        self,
        table: SourceTable,
        days_before: float,
        record: dict[str, Scalar],
        op: Literal["upsert", "delete"] = "upsert",
    ) -> None:
        event_id = f"{self.prefix}-{len(self.rows):03d}"
        self.rows.append(SourceRow(event_id, table, op, _stamp(self.as_of, days_before), record))


def _iso(as_of: date, days_before: float) -> str:
    return (as_of - timedelta(days=int(days_before))).isoformat()


def generate_borough(people: int, seed: int, as_of: date = DEFAULT_AS_OF) -> Borough:
    """Make `people` adult residents with two years of history and next-year outcomes."""
    rng = np.random.default_rng(seed)
    n = people

    # --- who lives here (vectorised) ---------------------------------------------------
    age_bins = np.array([[18, 25], [25, 45], [45, 65], [65, 75], [75, 85], [85, 101]])
    age_bin = rng.choice(len(age_bins), size=n, p=[0.13, 0.42, 0.33, 0.065, 0.04, 0.015])
    age = rng.integers(age_bins[age_bin, 0], age_bins[age_bin, 1])
    older = age >= 65
    sex = rng.choice(3, size=n, p=[0.505, 0.485, 0.01])
    eth_young = rng.choice(5, size=n, p=[0.40, 0.28, 0.23, 0.05, 0.04])
    eth_old = rng.choice(5, size=n, p=[0.70, 0.14, 0.12, 0.02, 0.02])
    ethnicity = np.where(older, eth_old, eth_young)
    ethnicity_unknown = rng.random(n) < 0.03
    ward = rng.integers(0, len(WARDS), size=n)
    lives_alone = rng.random(n) < np.select([age >= 80, older], [0.5, 0.35], 0.12)
    tenure_young = rng.choice(6, size=n, p=[0.38, 0.24, 0.28, 0.03, 0.04, 0.03])
    tenure_old = rng.choice(6, size=n, p=[0.55, 0.08, 0.34, 0.0, 0.02, 0.01])
    tenure = np.where(older, tenure_old, tenure_young)

    # --- the latents --------------------------------------------------------------------
    frailty = 0.085 * (age - 72) + 0.45 * lives_alone + rng.normal(0, 0.9, n)
    strain = (
        rng.normal(0, 1, n)
        + 0.9 * np.isin(tenure, [4, 5])
        + 0.4 * (tenure == 1)
        + 0.3 * np.isin(tenure, [2, 3])
        - 0.5 * (tenure == 0)
        - 0.012 * (age - 40)
        + _WARD_PRESSURE[ward]
    )
    frailty_index = np.clip(0.1 + 0.055 * frailty + rng.normal(0, 0.02, n), 0.0, 0.7)
    deceased = rng.random(n) < np.where(age >= 85, 0.05, np.where(older, 0.012, 0.001))

    # --- counts of events in the last two years (Poisson in the latents) -------------------
    def poisson(log_rate: np.ndarray) -> np.ndarray:
        return rng.poisson(np.exp(np.minimum(log_rate, 2.5)))

    fall_contacts = poisson(-2.4 + 1.0 * frailty)
    fall_callouts = poisson(-2.3 + 1.0 * frailty)
    fall_admissions = poisson(-4.0 + 1.0 * frailty)
    frailty_admissions = poisson(-4.2 + 1.1 * frailty)
    other_admissions = poisson(-3.6 + 0.4 * frailty)
    mobility_contacts = poisson(-3.4 + 0.9 * frailty)
    neglect_contacts = poisson(-5.0 + 0.6 * frailty + 0.4 * lives_alone)
    carer_contacts = poisson(-5.0 + 0.6 * frailty)
    advice_contacts = poisson(np.full(n, -3.2))
    other_callouts = poisson(-3.0 + 0.3 * frailty)
    has_care = rng.random(n) < _sigmoid(-3.0 + 1.3 * frailty)
    has_telecare = rng.random(n) < _sigmoid(-3.2 + 1.0 * frailty + 0.8 * lives_alone)

    arrears_drive = strain + rng.normal(0, 0.7, n)
    weeks_in_arrears = np.round(np.clip(3.2 * arrears_drive - 2.5, 0, 40), 1)
    nosp = (weeks_in_arrears > 7) & (rng.random(n) < 0.65)
    eviction = nosp & (weeks_in_arrears > 13) & (rng.random(n) < 0.45)
    ct_drive = strain + rng.normal(0, 0.8, n)
    ct_arrears_pounds = np.where(ct_drive > 0.6, np.exp(4.6 + 0.8 * ct_drive), 0.0).round()
    claims = rng.random(n) < _sigmoid(
        -0.8 + 0.8 * strain + 1.0 * np.isin(tenure, [2, 3, 4, 5]) + 0.8 * (age >= 66)
    )
    cap = claims & (age < 66) & (rng.random(n) < _sigmoid(-3.2 + 1.0 * strain))
    suspended = claims & (rng.random(n) < _sigmoid(-3.4 + 0.9 * strain))

    # --- what happens next (outcomes) --------------------------------------------------
    recent_falls = fall_contacts + fall_callouts + fall_admissions
    fall_logit = -1.9 + 0.6 * frailty + 0.5 * np.minimum(recent_falls, 4) + rng.normal(0, 0.6, n)
    homeless_logit = (
        -5.9
        + 1.0 * strain
        + 1.1 * nosp
        + 1.5 * eviction
        + 0.8 * np.isin(tenure, [4, 5])
        + 0.6 * cap
    ) + rng.normal(0, 0.5, n)
    progression = 0.012 + 0.014 * np.maximum(frailty, -1) + 0.035 * (frailty_admissions > 0)
    next_index = frailty_index + np.maximum(0.0, progression + rng.normal(0, 0.02, n))
    risk = {
        "falls": _sigmoid(fall_logit),
        "homelessness": _sigmoid(homeless_logit),
        "frailty": np.where(frailty_index < 0.24, np.clip((next_index - 0.20) * 8, 0, 1), 0.0),
    }
    labels = {
        "falls": (rng.random(n) < risk["falls"]) & ~deceased,
        "homelessness": (rng.random(n) < risk["homelessness"]) & ~deceased,
        "frailty": (frailty_index < 0.24) & (next_index >= 0.24) & ~deceased,
    }

    # --- the rows each source system holds (a loop, with a fast scalar generator) ----------
    draw = random.Random(seed)
    residents: list[Resident] = []
    born_before = as_of
    for i in range(n):
        person_ref = f"P{i + 1:07d}"
        ward_name = WARDS[ward[i]]
        outward = _WARD_POSTCODE[ward_name]
        writer = _RowWriter(seed, i, as_of)
        dob = born_before - timedelta(
            days=int(age[i]) * 365 + draw.randrange(0, 365) + int(age[i]) // 4
        )
        writer.add(
            "people.residents",
            HISTORY_DAYS,
            {
                "person_ref": person_ref,
                "given_name": draw.choice(_GIVEN),
                "family_name": draw.choice(_FAMILY),
                "date_of_birth": dob.isoformat(),
                "address_line_1": f"{draw.randrange(1, 240)} {draw.choice(_STREETS)}",
                "address_line_2": ward_name,
                "address_line_3": None,
                "town": _TOWN[outward],
                "postcode": f"{outward} {draw.randrange(0, 10)}Z{draw.choice('ABDEFGHJLNPQRSTUWXY')}",
                "uprn": f"9000{i + 1:08d}",
                "ward": ward_name,
                "sex": SEXES[sex[i]],
                "ethnicity": "unknown" if ethnicity_unknown[i] else ETHNICITIES[ethnicity[i]],
                "preferred_language": draw.choice(_LANGUAGES),
                "lives_alone": bool(lives_alone[i]),
                "deceased_date": None,
            },
        )
        _tenancy_rows(writer, draw, i, tenure[i], bool(lives_alone[i]), float(strain[i]),
                      float(weeks_in_arrears[i]), bool(nosp[i]), bool(eviction[i]))  # fmt: skip
        _council_tax_rows(
            writer, draw, i, bool(lives_alone[i]), float(ct_arrears_pounds[i]), bool(claims[i])
        )
        if claims[i]:
            _claim_rows(writer, draw, i, int(age[i]), bool(cap[i]), bool(suspended[i]))
        contact_reasons = (
            ["fall"] * fall_contacts[i]
            + ["mobility"] * mobility_contacts[i]
            + ["self_neglect"] * neglect_contacts[i]
            + ["carer_breakdown"] * carer_contacts[i]
            + ["information_advice"] * advice_contacts[i]
        )
        for k, reason in enumerate(contact_reasons):
            days = draw.uniform(1, HISTORY_DAYS - 1)
            outcome = draw.choice(
                ("assessment", "service_provided", "signposted", "no_further_action")
            )
            writer.add(
                "social_care.contacts",
                days,
                {
                    "contact_id": f"SC{i + 1:07d}{k:02d}",
                    "person_ref": person_ref,
                    "contact_date": _iso(as_of, days),
                    "reason": reason,
                    "outcome": outcome,
                },
            )
        callouts = ["fall"] * fall_callouts[i] + ["other"] * other_callouts[i]
        for k, kind in enumerate(callouts):
            days = draw.uniform(1, HISTORY_DAYS - 1)
            if kind == "fall":
                category = "fall_conveyed" if draw.random() < 0.45 else "fall_not_conveyed"
            else:
                category = draw.choice(("breathing", "other"))
            writer.add(
                "health.ambulance_callouts",
                days,
                {
                    "incident_id": f"AMB{i + 1:07d}{k:02d}",
                    "person_ref": person_ref,
                    "incident_at": _stamp(as_of, days).isoformat(),
                    "category": category,
                },
            )
        spells = (
            ["fall_injury"] * fall_admissions[i]
            + ["frailty_related"] * frailty_admissions[i]
            + [draw.choice(("respiratory", "other"))] * other_admissions[i]
        )
        for k, reason in enumerate(spells):
            days = draw.uniform(5, HISTORY_DAYS - 1)
            stay = draw.randint(1, 14 if reason != "other" else 5)
            writer.add(
                "health.hospital_discharges",
                max(1.0, days - stay),
                {
                    "spell_id": f"HS{i + 1:07d}{k:02d}",
                    "person_ref": person_ref,
                    "admitted_on": _iso(as_of, days),
                    "discharged_on": _iso(as_of, max(1.0, days - stay)),
                    "reason": reason,
                    "destination": "usual_residence"
                    if draw.random() < 0.93
                    else "temporary_residence",
                },
            )
        packages = (["home_care"] if has_care[i] else []) + (
            ["telecare"] if has_telecare[i] else []
        )
        for k, service in enumerate(packages):
            days = draw.uniform(2, HISTORY_DAYS - 1)
            hours = (
                0.0
                if service == "telecare"
                else round(min(30.0, 4 + 4 * max(0.0, float(frailty[i])) + draw.uniform(0, 4)), 1)
            )
            writer.add(
                "social_care.care_packages",
                days,
                {
                    "package_id": f"CP{i + 1:07d}{k:02d}",
                    "person_ref": person_ref,
                    "service_type": service,
                    "hours_per_week": hours,
                    "start_date": _iso(as_of, days),
                    "end_date": None,
                },
            )
        if deceased[i]:
            record = dict(writer.rows[0].record)
            record["deceased_date"] = _iso(as_of, 3)
            writer.add("people.residents", 2, record)
        residents.append(
            Resident(
                person_ref=person_ref,
                age=int(age[i]),
                sex=SEXES[sex[i]],
                ethnicity="unknown" if ethnicity_unknown[i] else ETHNICITIES[ethnicity[i]],
                ward=ward_name,
                lives_alone=bool(lives_alone[i]),
                tenure=TENURES[tenure[i]],
                deceased=bool(deceased[i]),
                frailty=float(frailty[i]),
                strain=float(strain[i]),
                frailty_index=float(frailty_index[i]),
                risk={name: float(values[i]) for name, values in risk.items()},
                labels={name: int(values[i]) for name, values in labels.items()},
                eligible={
                    "falls": not deceased[i],
                    "homelessness": not deceased[i],
                    "frailty": bool(frailty_index[i] < 0.24) and not deceased[i],
                },
                rows=sorted(writer.rows, key=lambda row: row.occurred_at),
            )
        )
    return Borough(seed=seed, as_of=as_of, residents=residents)


def _tenancy_rows(
    writer: _RowWriter,
    draw: random.Random,
    i: int,
    tenure_index: int,
    lives_alone: bool,
    strain: float,
    weeks: float,
    nosp: bool,
    eviction: bool,
) -> None:
    tenure = TENURES[tenure_index]
    if tenure not in COUNCIL_TENURES:
        return
    tenancy_ref = f"T{i + 1:07d}"
    recent = tenure in ("introductory", "temporary_accommodation")
    started = (
        draw.uniform(30, HISTORY_DAYS - 5) if recent else HISTORY_DAYS + draw.uniform(30, 7000)
    )
    household = 1 if lives_alone else draw.randint(2, 6)
    bedrooms = max(1, min(4, household // 2 + (1 if draw.random() < 0.6 - 0.1 * strain else 0)))
    writer.add(
        "housing.tenancies",
        min(started, HISTORY_DAYS - 1),
        {
            "tenancy_ref": tenancy_ref,
            "person_ref": writer.rows[0].record["person_ref"],
            "tenure_type": tenure,
            "start_date": _iso(writer.as_of, started),
            "end_date": None,
            "household_size": household,
            "bedrooms": bedrooms,
        },
    )
    weekly_rent = draw.randint(110, 170) * 100
    opened = min(started, HISTORY_DAYS - 1) - 0.5
    # The rent account opens clear, then (for some) arrears build up in a few steps.
    writer.add(
        "housing.rent_accounts",
        opened,
        _rent(tenancy_ref, 0.0, weekly_rent, writer.as_of, opened, False, None),
    )
    if weeks <= 0:
        return
    steps = 1 + int(weeks > 4) + int(weeks > 10)
    days = sorted((draw.uniform(10, min(opened - 1, 400)) for _ in range(steps)), reverse=True)
    for step, day in enumerate(days, start=1):
        so_far = round(weeks * step / steps, 1)
        last = step == steps
        eviction_on = _iso(writer.as_of, -draw.randint(20, 120)) if (last and eviction) else None
        writer.add(
            "housing.rent_accounts",
            day,
            _rent(tenancy_ref, so_far, weekly_rent, writer.as_of, day, last and nosp, eviction_on),
        )


def _rent(
    tenancy_ref: str,
    weeks: float,
    weekly_rent: int,
    as_of: date,
    days_before: float,
    nosp: bool,
    eviction_date: str | None,
) -> dict[str, Scalar]:
    return {
        "tenancy_ref": tenancy_ref,
        "balance_pence": round(weeks * weekly_rent),
        "weeks_in_arrears": weeks,
        "last_payment_date": _iso(as_of, days_before + 7 * weeks),
        "nosp_served": nosp,
        "eviction_date": eviction_date,
    }


_ENFORCEMENT = ("none", "reminder", "summons", "liability_order", "enforcement_agent")


def _council_tax_rows(
    writer: _RowWriter,
    draw: random.Random,
    i: int,
    lives_alone: bool,
    arrears_pounds: float,
    claims: bool,
) -> None:
    account_ref = f"CT{i + 1:07d}"
    reduction = draw.randint(5, 25) * 100 if claims else 0

    def record(arrears: float, stage: str) -> dict[str, Scalar]:
        return {
            "account_ref": account_ref,
            "person_ref": writer.rows[0].record["person_ref"],
            "arrears_pence": int(arrears * 100),
            "single_person_discount": lives_alone,
            "reduction_award_pence": reduction,
            "enforcement_stage": stage,
        }

    writer.add("revenues.council_tax_accounts", HISTORY_DAYS - 0.25, record(0, "none"))
    if arrears_pounds <= 0:
        return
    final = 1 + int(arrears_pounds > 250) + int(arrears_pounds > 600) + int(arrears_pounds > 1100)
    days = sorted((draw.uniform(5, 500) for _ in range(final)), reverse=True)
    for stage, day in enumerate(days, start=1):
        writer.add(
            "revenues.council_tax_accounts",
            day,
            record(arrears_pounds * stage / final, _ENFORCEMENT[stage]),
        )


def _claim_rows(
    writer: _RowWriter, draw: random.Random, i: int, age: int, cap: bool, suspended: bool
) -> None:
    claim_ref = f"BC{i + 1:07d}"
    if age >= 66:
        benefit = "pension_credit" if draw.random() < 0.5 else "housing_benefit"
    else:
        benefit = "universal_credit_housing" if draw.random() < 0.7 else "housing_benefit"
    amount = draw.randint(40, 180) * 100
    started = draw.uniform(60, HISTORY_DAYS - 2)

    def record(status: str, capped: bool) -> dict[str, Scalar]:
        return {
            "claim_ref": claim_ref,
            "person_ref": writer.rows[0].record["person_ref"],
            "benefit_type": benefit,
            "status": status,
            "weekly_amount_pence": amount - (3000 if capped else 0),
            "benefit_cap_applied": capped,
        }

    writer.add("benefits.claims", started, record("active", False))
    latest = started
    if cap:
        latest = draw.uniform(started / 2, started - 1)
        writer.add("benefits.claims", latest, record("active", True))
    if suspended:
        writer.add(
            "benefits.claims", draw.uniform(1, min(200.0, latest - 1)), record("suspended", cap)
        )


def _change(row: SourceRow) -> SourceChange:
    # The rows are built to the contract above; skipping validation keeps 100k+ events fast.
    return SourceChange.model_construct(
        source_event_id=row.source_event_id,
        table=row.table,
        op=row.op,
        occurred_at=row.occurred_at,
        record=row.record,
    )


def _ordered(residents: list[Resident]) -> Iterator[SourceRow]:
    """Every row in time order; a resident's own rows keep their order on ties."""
    keyed = [
        (row.occurred_at, n, k, row)
        for n, r in enumerate(residents)
        for k, row in enumerate(r.rows)
    ]
    keyed.sort(key=lambda item: item[:3])
    return (item[3] for item in keyed)


def source_changes(borough: Borough) -> list[SourceChange]:
    """The whole borough as native events, in the order the source systems would send them."""
    return [_change(row) for row in _ordered(borough.residents)]


def _combined_risk(borough: Borough) -> np.ndarray:
    """Each resident's highest outcome probability relative to its base rate."""
    scores = []
    for outcome in OUTCOMES:
        values = np.array([r.risk[outcome] for r in borough.residents])
        scores.append(values / max(1e-9, float(values.mean())))
    return np.max(np.vstack(scores), axis=0)


def demo_stream(n_events: int, seed: int, as_of: date = DEFAULT_AS_OF) -> list[SourceChange]:
    """Exactly `n_events` changes from a risk-enriched slice of a borough.

    Two residents in three come from the riskiest tenth of the borough, so that a short
    demo shows the high band and the outreach it leads to; the rest are ordinary
    residents, so that most people in it are, as in life, not flagged. Whole residents
    are taken, and the last one is cut short (their resident row always comes first).
    """
    if n_events <= 0:
        return []
    borough = generate_borough(max(2000, n_events // 2), seed, as_of)
    order = np.argsort(-_combined_risk(borough), kind="stable")
    cut = len(order) // 10
    shuffle = random.Random(seed + 1)
    risky, ordinary = list(order[:cut]), list(order[cut:])
    shuffle.shuffle(risky)
    shuffle.shuffle(ordinary)
    chosen: list[Resident] = []
    total = 0
    turn = 0
    while total < n_events and (risky or ordinary):
        source = risky if (turn % 3 != 2 and risky) or not ordinary else ordinary
        resident = borough.residents[int(source.pop())]
        turn += 1
        if resident.deceased:
            continue
        take = min(len(resident.rows), n_events - total)
        chosen.append(Resident(**{**resident.__dict__, "rows": resident.rows[:take]}))
        total += take
    if total < n_events:
        raise ValueError(f"a borough of {len(borough.residents)} people has only {total} events")
    return [_change(row) for row in _ordered(chosen)]
