"""A synthetic Barking and Dagenham: people, households, wards, their life in the council's
source systems, and what happened to them next.

No real resident data exists in this project, so the models are trained, and the demo
is run, on people made up here. Every name, address, postcode, date of birth and UPRN is
fake and looks it (streets from a word list, postcodes ending in ``Z?``, UPRNs starting
``9000``).

Who lives here. At ``scale=1`` the borough has the Census 2021 population: 218,900
people (57,150 aged 0-15, 142,700 aged 16-64, 19,050 aged 65+) in about 73,900 households
across 17 wards. Older people live alone (about 3 in 10, half of those 80+), in couples or
with family; working-age adults head the other households, alone, with a partner, with
children or with other adults. Ward and tenure belong to the household. The council's
resident index sends only adults (18+) to this platform: children are counted, and make
households bigger, but no record of a child ever leaves the source systems.

The latent causal structure, stated so that anyone can check what the models can and
cannot learn:

- ``frailty`` (per person: rising with age and living alone, plus noise) drives falls
  reported to social care, ambulance fall call-outs, fall and frailty admissions, mobility
  contacts and care packages; it also sets an eFI-like frailty index today.
- ``strain`` (per household: tenure, ward, the head's age, plus noise) drives rent and
  council tax arrears, enforcement, possession notices, evictions, benefit caps and
  suspensions; all of these are recorded against the household's reference person (the
  tenant and council tax payer).
- Outcomes depend on the latents *and* on some observed events, with their own noise:
  a fall within 12 months (frailty, age, recent falls), a homelessness duty for the
  household within 12 months, of which the 6-month part is the model's label (strain,
  possession notice, eviction date, temporary accommodation, benefit cap), moving to
  moderate or severe frailty (eFI >= 0.24) within 12 months (frailty, frailty admissions;
  only for people below 0.24 today).
- Ethnicity and sex do not enter the latent structure; ethnicity varies with age only, as
  in the borough's census profile. That lets the model cards' fairness tables show what
  a model does to groups it was never told about.

Outcomes are drawn by systematic sampling (a random order, one uniform offset): each
person's chance is exactly their probability, as with coin flips, but the total lands
within one of its expectation, so that even a tenth of the borough shows the base rates
of FACTS.md rather than the luck of the draw.

Life over time: besides the events above, some households move within the borough (the
resident rows change address and ward), some care packages end or are deleted as entered
in error, some social care contacts are deleted, some benefit claims end, some people die.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import numpy as np

from shared.events import Scalar
from shared.inbound import SourceChange

DEFAULT_AS_OF = date(2025, 6, 30)
DEFAULT_SEED = 2025
HISTORY_DAYS = 730
FEED_MIN_AGE = 18

# Census 2021, Barking and Dagenham (FACTS.md).
PEOPLE = 218_900
CHILDREN_0_15 = 57_150
WORKING_AGE_16_64 = 142_700
OLDER_65_PLUS = 19_050
HOUSEHOLDS = 73_900
ONE_PERSON_HOUSEHOLD_SHARE = 0.24

# The base rates the borough is tuned to (FACTS.md), for `stats` and its tests.
TARGETS: dict[str, float] = {
    "falls_rate_65_plus": 1 / 3,
    "falls_rate_80_plus": 1 / 2,
    "homelessness_duties_per_1000_households": 14.0,
    "frailty_mild_plus_65_plus": 0.437,
}
EFI_MILD = 0.12
EFI_MODERATE = 0.24

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

# Told (adults done, adults in all) as histories are written, for a progress bar.
Advance = Callable[[int, int], None]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


@dataclass(frozen=True)
class SourceRow:
    """One native change to one row of a source table, before it becomes a SourceChange.

    A delete's record holds only the row's key column, as a source system sends it.
    """

    source_event_id: str
    table: str
    op: Literal["upsert", "delete"]
    occurred_at: datetime
    record: dict[str, Scalar]


@dataclass
class Resident:
    """An adult in the resident index, with their history and what happened next."""

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
    household: int = 0
    household_head: bool = True
    household_size: int = 1
    rows: list[SourceRow] = field(default_factory=list)


OUTCOMES = ("falls", "homelessness", "frailty")


@dataclass
class Borough:
    seed: int
    as_of: date
    residents: list[Resident]
    scale: float = 1.0
    people: int = 0  # everyone, children included
    households: int = 0
    # Households owed a homelessness duty within 12 months (the model's label is 6 months).
    homelessness_duties_12m: int = 0

    def label_array(self, outcome: str) -> np.ndarray:
        return np.array([r.labels[outcome] for r in self.residents], dtype=np.int8)

    def base_rates(self, min_age: int = FEED_MIN_AGE) -> dict[str, float]:
        """Share of eligible residents aged `min_age`+ with each outcome."""
        rates = {}
        for outcome in OUTCOMES:
            chosen = [r for r in self.residents if r.age >= min_age and r.eligible[outcome]]
            rates[outcome] = sum(r.labels[outcome] for r in chosen) / max(1, len(chosen))
        return rates

    def stats(self) -> dict[str, Any]:
        """The base rates FACTS.md gives, measured on this borough."""
        living = [r for r in self.residents if not r.deceased]
        older = [r for r in living if r.age >= 65]
        oldest = [r for r in older if r.age >= 80]

        def share(people: list[Resident], test: Callable[[Resident], bool]) -> float:
            return round(sum(map(test, people)) / max(1, len(people)), 4)

        return {
            "falls_rate_65_plus": share(older, lambda r: r.labels["falls"] == 1),
            "falls_rate_80_plus": share(oldest, lambda r: r.labels["falls"] == 1),
            "homelessness_duties_per_1000_households": round(
                1000 * self.homelessness_duties_12m / max(1, self.households), 2
            ),
            "frailty_mild_plus_65_plus": share(older, lambda r: r.frailty_index >= EFI_MILD),
            "people": self.people,
            "households": self.households,
            "adults_in_resident_index": len(self.residents),
            "wards": len({r.ward for r in self.residents}),
            "scale": self.scale,
            "seed": self.seed,
        }


def borough_stats(
    scale: float, seed: int = DEFAULT_SEED, advance: Advance | None = None
) -> dict[str, Any]:
    """Generate a borough and return its base rates (see `Borough.stats`)."""
    return generate_borough(scale, seed, advance=advance).stats()


def _stamp(as_of: date, days_before: float) -> datetime:
    """A UTC time `days_before` days before the end of `as_of` (fractions give the hour)."""
    end = datetime(as_of.year, as_of.month, as_of.day, 18, 0, tzinfo=UTC)
    return (end - timedelta(days=days_before)).replace(microsecond=0)


class _RowWriter:
    """Collects one resident's rows with ids that depend only on seed, person and order."""

    def __init__(self, seed: int, index: int, as_of: date, person_ref: str) -> None:
        self.prefix = f"syn{seed}-{index:06d}"
        self.as_of = as_of
        self.person_ref = person_ref
        self.rows: list[SourceRow] = []

    def add(
        self,
        table: str,
        days_before: float,
        record: dict[str, Scalar],
        op: Literal["upsert", "delete"] = "upsert",
    ) -> None:
        event_id = f"{self.prefix}-{len(self.rows):03d}"
        self.rows.append(SourceRow(event_id, table, op, _stamp(self.as_of, days_before), record))


def _iso(as_of: date, days_before: float) -> str:
    return (as_of - timedelta(days=int(days_before))).isoformat()


def systematic_draw(
    rng: np.random.Generator, probability: np.ndarray, strata: np.ndarray | None = None
) -> np.ndarray:
    """0/1 outcomes, each 1 with exactly its probability, whose total is within one of
    the sum of the probabilities (systematic sampling over a random order). Ordered by
    `strata` first, the total of each stratum is within about one of its own sum too."""
    shuffled = rng.random(len(probability))
    order = np.lexsort((shuffled,) if strata is None else (shuffled, strata))
    running = rng.random() + np.cumsum(np.clip(probability[order], 0.0, 1.0))
    hits = np.diff(np.floor(running), prepend=0.0).astype(np.int8)
    hits[0] = int(running[0] >= 1.0)
    drawn = np.zeros(len(probability), dtype=np.int8)
    drawn[order] = hits
    return drawn


def _counts(scale: float) -> tuple[int, int, int, int]:
    if scale <= 0:
        raise ValueError("scale must be positive")
    children = round(CHILDREN_0_15 * scale)
    working = round(WORKING_AGE_16_64 * scale)
    older = round(OLDER_65_PLUS * scale)
    return children, working, older, max(1, round(HOUSEHOLDS * scale))


def _ages(rng: np.random.Generator, children: int, working: int, older: int) -> np.ndarray:
    working_years = np.arange(16, 65)
    working_weight = np.where(working_years < 45, 1.0, 1.0 - 0.45 * (working_years - 45) / 19)
    older_years = np.arange(65, 101)
    older_weight = np.exp(-(older_years - 65) / 11.0)
    ages = np.concatenate(
        [
            rng.integers(0, 16, size=children),
            rng.choice(working_years, size=working, p=working_weight / working_weight.sum()),
            rng.choice(older_years, size=older, p=older_weight / older_weight.sum()),
        ]
    )
    # Shuffle, so that person references say nothing about age.
    return np.asarray(rng.permutation(ages))


def _households(
    rng: np.random.Generator, age: np.ndarray, households: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each person's household index, and each household's reference person."""
    n = len(age)
    household = np.full(n, -1, dtype=np.int64)
    older = rng.permutation(np.flatnonzero(age >= 65))
    alone_chance = np.where(age[older] >= 80, 0.48, 0.30)
    alone = older[rng.random(len(older)) < alone_chance]
    together = older[~np.isin(older, alone)]
    with_family = together[: int(0.2 * len(together))]
    couples = together[len(with_family) :]
    if len(couples) % 2:
        with_family, couples = np.append(with_family, couples[-1]), couples[:-1]
    older_heads = np.concatenate([alone, couples[0::2]])
    heads_needed = max(0, households - len(older_heads))

    adults = np.flatnonzero((age >= 18) & (age < 65))
    weight = np.select([age[adults] < 22, age[adults] < 25], [0.15, 0.5], 1.0)
    heads_needed = min(heads_needed, len(adults))
    working_heads = rng.choice(adults, size=heads_needed, replace=False, p=weight / weight.sum())
    singles = max(0, min(heads_needed, round(ONE_PERSON_HOUSEHOLD_SHARE * households) - len(alone)))
    working_singles, shared = working_heads[:singles], working_heads[singles:]

    heads = np.concatenate([alone, couples[0::2], working_singles, shared])
    household[heads] = np.arange(len(heads))
    household[couples[1::2]] = household[couples[0::2]]

    # A partner of about the same age for each shared working-age household.
    free_adults = rng.permutation(adults[household[adults] < 0])
    partners = np.sort(free_adults[: len(shared)])
    matched = shared[np.argsort(age[shared], kind="stable")][: len(partners)]
    household[partners[np.argsort(age[partners], kind="stable")]] = household[matched]
    others = np.concatenate([free_adults[len(shared) :], with_family])
    if len(shared):
        household[others] = household[rng.choice(shared, size=len(others))]
        families = shared[(age[shared] >= 20) & (age[shared] < 60)]
        families = families if len(families) else shared
        young = np.flatnonzero(household < 0)
        household[young] = household[rng.choice(families, size=len(young))]
    else:  # a borough too small for shared households: everyone left lives with a head
        rest = np.flatnonzero(household < 0)
        household[rest] = household[rng.choice(heads, size=len(rest))]
    return household, heads


def generate_borough(
    scale: float = 1.0,
    seed: int = DEFAULT_SEED,
    as_of: date = DEFAULT_AS_OF,
    *,
    advance: Advance | None = None,
) -> Borough:
    """The borough at `scale` (1.0 = 218,900 people) with two years of history and outcomes.

    `advance(done, total)` is called now and then as adults' histories are written.
    """
    rng = np.random.default_rng(seed)
    children, working, older_count, households = _counts(scale)
    age = _ages(rng, children, working, older_count)
    n = len(age)
    household, head = _households(rng, age, households)
    households = len(head)
    size = np.bincount(household, minlength=households)
    adults_in = np.bincount(household, weights=(age >= 18), minlength=households).astype(int)
    is_head = np.zeros(n, dtype=bool)
    is_head[head] = True
    head_age = age[head]

    # --- who lives here -------------------------------------------------------------------
    older = age >= 65
    sex = np.where(
        older,
        rng.choice(3, size=n, p=[0.56, 0.435, 0.005]),
        rng.choice(3, size=n, p=[0.505, 0.485, 0.01]),
    )
    eth_young = rng.choice(5, size=n, p=[0.40, 0.28, 0.23, 0.05, 0.04])
    eth_old = rng.choice(5, size=n, p=[0.70, 0.14, 0.12, 0.02, 0.02])
    ethnicity = np.where(older, eth_old, eth_young)
    ethnicity_unknown = rng.random(n) < 0.03
    ward = rng.integers(0, len(WARDS), size=households)
    tenure_working = rng.choice(6, size=households, p=[0.37, 0.27, 0.26, 0.03, 0.045, 0.025])
    tenure_older = rng.choice(6, size=households, p=[0.57, 0.05, 0.35, 0.0, 0.01, 0.02])
    tenure = np.where(head_age >= 65, tenure_older, tenure_working)
    lives_alone = size[household] == 1
    moved = rng.random(households) < 0.04
    old_ward = (ward + rng.integers(1, len(WARDS), size=households)) % len(WARDS)
    move_day = rng.uniform(30, HISTORY_DAYS - 30, size=households)

    # --- the latents ------------------------------------------------------------------------
    frailty = 0.085 * (age - 72) + 0.45 * lives_alone + rng.normal(0, 0.9, n)
    strain = (
        rng.normal(0, 1, households)
        + 0.9 * np.isin(tenure, [4, 5])
        + 0.4 * (tenure == 1)
        + 0.3 * np.isin(tenure, [2, 3])
        - 0.5 * (tenure == 0)
        - 0.012 * (head_age - 40)
        + 0.1 * (size >= 5)
        + _WARD_PRESSURE[ward]
    )
    frailty_index = np.clip(0.094 + 0.055 * frailty + rng.normal(0, 0.02, n), 0.0, 0.7)
    deceased = (age >= FEED_MIN_AGE) & (
        rng.random(n) < np.where(age >= 85, 0.05, np.where(older, 0.012, 0.001))
    )

    # --- per person: counts of events in the last two years (Poisson in the latents) -----
    def poisson(log_rate: np.ndarray) -> np.ndarray:
        return np.asarray(rng.poisson(np.exp(np.minimum(log_rate, 2.5))))

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

    # --- per household: money and housing -------------------------------------------------
    arrears_drive = strain + rng.normal(0, 0.7, households)
    weeks_in_arrears = np.round(np.clip(4.0 * arrears_drive - 2.5, 0, 40), 1)
    council_tenant = np.isin(tenure, [2, 3, 4, 5])
    weeks_in_arrears = np.where(council_tenant, weeks_in_arrears, 0.0)
    nosp = (weeks_in_arrears > 6) & (rng.random(households) < 0.6)
    eviction = nosp & (weeks_in_arrears > 10) & (rng.random(households) < 0.35)
    ct_drive = strain + rng.normal(0, 0.6, households)
    ct_arrears_pounds = np.where(ct_drive > 0.4, np.exp(4.6 + 0.8 * ct_drive), 0.0).round()
    claims = rng.random(households) < _sigmoid(
        -0.8 + 0.8 * strain + 1.0 * council_tenant + 0.8 * (head_age >= 66)
    )
    cap = claims & (head_age < 66) & (rng.random(households) < _sigmoid(-3.2 + 1.0 * strain))
    suspended = claims & (rng.random(households) < _sigmoid(-3.4 + 0.9 * strain))
    claim_ended = claims & ~cap & (rng.random(households) < 0.05)

    # --- what happens next (outcomes) ------------------------------------------------------
    recent_falls = fall_contacts + fall_callouts + fall_admissions
    fall_logit = (
        -1.25
        + 0.55 * frailty
        - 0.03 * np.maximum(65 - age, 0)
        + 0.45 * np.minimum(recent_falls, 4)
        + rng.normal(0, 0.6, n)
    )
    fall_chance = np.where(deceased | (age < FEED_MIN_AGE), 0.0, _sigmoid(fall_logit))
    fell = systematic_draw(rng, fall_chance, strata=age)

    homeless_logit = (
        -5.71
        + 1.2 * strain
        + 1.1 * nosp
        + 1.5 * eviction
        + 0.8 * np.isin(tenure, [4, 5])
        + 0.6 * cap
        + rng.normal(0, 0.5, households)
    )
    duty_chance = _sigmoid(homeless_logit)
    duty_12m = systematic_draw(rng, duty_chance)
    # Most duties come soon after an eviction date is set; otherwise evenly over the year.
    early_share = np.where(eviction, 0.7, 0.5)
    duty_6m = duty_12m.astype(bool) & (rng.random(households) < early_share)

    progression = 0.012 + 0.014 * np.maximum(frailty, -1) + 0.035 * (frailty_admissions > 0)
    next_index = frailty_index + np.maximum(-0.02, progression + rng.normal(0, 0.05, n))
    below = frailty_index < EFI_MODERATE
    risk = {
        "falls": fall_chance,
        "homelessness": duty_chance[household] * early_share[household] * is_head,
        "frailty": np.where(below, np.clip((next_index - 0.20) * 8, 0, 1), 0.0),
    }
    labels = {
        "falls": fell.astype(bool),
        "homelessness": duty_6m[household] & is_head & ~deceased,
        "frailty": below & (next_index >= EFI_MODERATE) & ~deceased,
    }

    # --- the rows each source system holds (a loop, with a fast scalar generator) ----------
    draw = random.Random(seed)
    residents: list[Resident] = []
    in_index = np.flatnonzero(age >= FEED_MIN_AGE).tolist()
    for done, i in enumerate(in_index, start=1):
        h = int(household[i])
        person_ref = f"P{i + 1:07d}"
        ward_name = WARDS[ward[h]]
        writer = _RowWriter(seed, i, as_of, person_ref)
        dob = as_of - timedelta(days=int(age[i]) * 365 + draw.randrange(0, 365) + int(age[i]) // 4)
        first_ward = WARDS[old_ward[h]] if moved[h] else ward_name
        resident_record = _resident_record(
            draw, i, person_ref, dob, first_ward,
            SEXES[sex[i]], "unknown" if ethnicity_unknown[i] else ETHNICITIES[ethnicity[i]],
            bool(lives_alone[i]),
        )  # fmt: skip
        writer.add("people.residents", HISTORY_DAYS, resident_record)
        if moved[h]:
            resident_record = _moved(draw, resident_record, ward_name)
            writer.add("people.residents", float(move_day[h]), resident_record)
        if is_head[i]:
            _tenancy_rows(writer, draw, h, int(tenure[h]), int(size[h]), float(strain[h]),
                          float(weeks_in_arrears[h]), bool(nosp[h]), bool(eviction[h]))  # fmt: skip
            _council_tax_rows(
                writer,
                draw,
                h,
                bool(adults_in[h] == 1),
                float(ct_arrears_pounds[h]),
                bool(claims[h]),
            )
            if claims[h]:
                _claim_rows(writer, draw, h, int(age[i]), bool(cap[h]), bool(suspended[h]),
                            bool(claim_ended[h]))  # fmt: skip
        _care_rows(
            writer,
            draw,
            i,
            {
                "fall": int(fall_contacts[i]),
                "mobility": int(mobility_contacts[i]),
                "self_neglect": int(neglect_contacts[i]),
                "carer_breakdown": int(carer_contacts[i]),
                "information_advice": int(advice_contacts[i]),
            },
            (["home_care"] if has_care[i] else []) + (["telecare"] if has_telecare[i] else []),
            float(frailty[i]),
        )
        _health_rows(writer, draw, i, int(fall_callouts[i]), int(other_callouts[i]),
                     int(fall_admissions[i]), int(frailty_admissions[i]), int(other_admissions[i]))  # fmt: skip
        if deceased[i]:
            writer.add("people.residents", 2, {**resident_record, "deceased_date": _iso(as_of, 3)})
        residents.append(
            Resident(
                person_ref=person_ref,
                age=int(age[i]),
                sex=SEXES[sex[i]],
                ethnicity=str(resident_record["ethnicity"]),
                ward=ward_name,
                lives_alone=bool(lives_alone[i]),
                tenure=TENURES[tenure[h]],
                deceased=bool(deceased[i]),
                frailty=float(frailty[i]),
                strain=float(strain[h]),
                frailty_index=float(frailty_index[i]),
                risk={name: float(values[i]) for name, values in risk.items()},
                labels={name: int(values[i]) for name, values in labels.items()},
                eligible={
                    "falls": not deceased[i],
                    "homelessness": bool(is_head[i]) and not deceased[i],
                    "frailty": bool(below[i]) and not deceased[i],
                },
                household=h,
                household_head=bool(is_head[i]),
                household_size=int(size[h]),
                rows=sorted(writer.rows, key=lambda row: row.occurred_at),
            )
        )
        if advance is not None and (done % 2000 == 0 or done == len(in_index)):
            advance(done, len(in_index))
    return Borough(
        seed=seed,
        as_of=as_of,
        residents=residents,
        scale=scale,
        people=n,
        households=households,
        homelessness_duties_12m=int(duty_12m.sum()),
    )


def _resident_record(
    draw: random.Random,
    i: int,
    person_ref: str,
    dob: date,
    ward_name: str,
    sex: str,
    ethnicity: str,
    lives_alone: bool,
) -> dict[str, Scalar]:
    outward = _WARD_POSTCODE[ward_name]
    return {
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
        "sex": sex,
        "ethnicity": ethnicity,
        "preferred_language": draw.choice(_LANGUAGES),
        "lives_alone": lives_alone,
        "deceased_date": None,
    }


def _moved(draw: random.Random, record: dict[str, Scalar], ward_name: str) -> dict[str, Scalar]:
    outward = _WARD_POSTCODE[ward_name]
    return {
        **record,
        "address_line_1": f"{draw.randrange(1, 240)} {draw.choice(_STREETS)}",
        "address_line_2": ward_name,
        "town": _TOWN[outward],
        "postcode": f"{outward} {draw.randrange(0, 10)}Z{draw.choice('ABDEFGHJLNPQRSTUWXY')}",
        "uprn": f"9100{draw.randrange(0, 10**8):08d}",
        "ward": ward_name,
    }


def _care_rows(
    writer: _RowWriter,
    draw: random.Random,
    i: int,
    contacts: dict[str, int],
    packages: list[str],
    frailty: float,
) -> None:
    as_of, person_ref = writer.as_of, writer.person_ref
    k = 0
    for reason, count in contacts.items():
        for _ in range(count):
            days = draw.uniform(1, HISTORY_DAYS - 1)
            contact_id = f"SC{i + 1:07d}{k:02d}"
            k += 1
            writer.add(
                "social_care.contacts",
                days,
                {
                    "contact_id": contact_id,
                    "person_ref": person_ref,
                    "contact_date": _iso(as_of, days),
                    "reason": reason,
                    "outcome": draw.choice(
                        ("assessment", "service_provided", "signposted", "no_further_action")
                    ),
                },
            )
            if draw.random() < 0.01 and days > 2:  # recorded against the wrong person
                writer.add(
                    "social_care.contacts",
                    draw.uniform(0.5, days - 1),
                    {"contact_id": contact_id},
                    "delete",
                )
    for k, service in enumerate(packages):
        days = draw.uniform(2, HISTORY_DAYS - 1)
        hours = (
            0.0
            if service == "telecare"
            else round(min(30.0, 4 + 4 * max(0.0, frailty) + draw.uniform(0, 4)), 1)
        )
        package_id = f"CP{i + 1:07d}{k:02d}"
        record: dict[str, Scalar] = {
            "package_id": package_id,
            "person_ref": person_ref,
            "service_type": service,
            "hours_per_week": hours,
            "start_date": _iso(as_of, days),
            "end_date": None,
        }
        writer.add("social_care.care_packages", days, record)
        fate = draw.random()
        if fate < 0.02 and days > 2:  # entered in error
            writer.add(
                "social_care.care_packages",
                draw.uniform(1, days - 1),
                {"package_id": package_id},
                "delete",
            )
        elif fate < 0.15 and days > 30:
            ended = draw.uniform(1, days - 20)
            writer.add(
                "social_care.care_packages", ended, {**record, "end_date": _iso(as_of, ended)}
            )


def _health_rows(
    writer: _RowWriter,
    draw: random.Random,
    i: int,
    fall_callouts: int,
    other_callouts: int,
    fall_admissions: int,
    frailty_admissions: int,
    other_admissions: int,
) -> None:
    as_of, person_ref = writer.as_of, writer.person_ref
    for k in range(fall_callouts + other_callouts):
        days = draw.uniform(1, HISTORY_DAYS - 1)
        if k < fall_callouts:
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
        ["fall_injury"] * fall_admissions
        + ["frailty_related"] * frailty_admissions
        + [draw.choice(("respiratory", "other"))] * other_admissions
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
                "destination": "usual_residence" if draw.random() < 0.93 else "temporary_residence",
            },
        )


def _tenancy_rows(
    writer: _RowWriter,
    draw: random.Random,
    h: int,
    tenure_index: int,
    household: int,
    strain: float,
    weeks: float,
    nosp: bool,
    eviction: bool,
) -> None:
    tenure = TENURES[tenure_index]
    if tenure not in COUNCIL_TENURES:
        return
    tenancy_ref = f"T{h + 1:07d}"
    recent = tenure in ("introductory", "temporary_accommodation")
    started = (
        draw.uniform(30, HISTORY_DAYS - 5) if recent else HISTORY_DAYS + draw.uniform(30, 7000)
    )
    bedrooms = (household + 1) // 2 + (1 if draw.random() < 0.5 - 0.15 * strain else 0)
    bedrooms -= 1 if draw.random() < 0.1 + 0.1 * max(strain, 0.0) else 0
    writer.add(
        "housing.tenancies",
        min(started, HISTORY_DAYS - 1),
        {
            "tenancy_ref": tenancy_ref,
            "person_ref": writer.person_ref,
            "tenure_type": tenure,
            "start_date": _iso(writer.as_of, started),
            "end_date": None,
            "household_size": household,
            "bedrooms": max(1, min(5, bedrooms)),
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
    h: int,
    single_adult: bool,
    arrears_pounds: float,
    claims: bool,
) -> None:
    account_ref = f"CT{h + 1:07d}"
    reduction = draw.randint(5, 25) * 100 if claims else 0

    def record(arrears: float, stage: str) -> dict[str, Scalar]:
        return {
            "account_ref": account_ref,
            "person_ref": writer.person_ref,
            "arrears_pence": int(arrears * 100),
            "single_person_discount": single_adult,
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
    writer: _RowWriter,
    draw: random.Random,
    h: int,
    age: int,
    cap: bool,
    suspended: bool,
    ended: bool,
) -> None:
    claim_ref = f"BC{h + 1:07d}"
    if age >= 66:
        benefit = "pension_credit" if draw.random() < 0.5 else "housing_benefit"
    else:
        benefit = "universal_credit_housing" if draw.random() < 0.7 else "housing_benefit"
    amount = draw.randint(40, 180) * 100
    started = draw.uniform(60, HISTORY_DAYS - 2)

    def record(status: str, capped: bool) -> dict[str, Scalar]:
        return {
            "claim_ref": claim_ref,
            "person_ref": writer.person_ref,
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
        latest = draw.uniform(1, min(200.0, latest - 1))
        writer.add("benefits.claims", latest, record("suspended", cap))
    if ended and latest > 3:
        writer.add("benefits.claims", draw.uniform(1, latest - 1), record("ended", cap))


def _change(row: SourceRow) -> SourceChange:
    # The rows are built to the contract above; skipping validation keeps 100k+ events fast.
    return SourceChange.model_construct(
        source_event_id=row.source_event_id,
        table=row.table,
        op=row.op,
        occurred_at=row.occurred_at,
        record=row.record,
    )


def ordered_rows(residents: list[Resident]) -> Iterator[SourceRow]:
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
    return [_change(row) for row in ordered_rows(borough.residents)]


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
    scale = max(0.02, n_events / 150_000)
    borough = generate_borough(scale, seed, as_of)
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
    return [_change(row) for row in ordered_rows(chosen)]
