"""Every Kafka topic the platform uses, with the partition count it is created with.

Topics are created explicitly before any worker starts: a topic that a producer creates
by writing to it gets the broker's default partition count, and Faust then stops with
`PartitionsMismatch` (see the Faust notes in the architecture handbook).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    compacted: bool = False
    description: str = ""


RESIDENT_EVENTS = Topic("resident.events.v1", 4, description="Pseudonymised source changes")
INGEST_REJECTED = Topic("ingest.rejected.v1", 1, description="Inbound changes ingest refused")
RISK_SCORES = Topic("risk.scores.v1", 4, description="Explained model scores per resident")
RISK_SCORES_SHADOW = Topic(
    "risk.scores.shadow.v1",
    4,
    description="Scores of candidate models in shadow mode: compared, never acted on",
)
OUTREACH_TASKS = Topic("outreach.tasks.v1", 4, description="Outreach task lifecycle")
NOTIFY_DELIVERIES = Topic("notify.deliveries.v1", 4, description="Letters and notifications")
RESIDENT_OPTOUTS = Topic("resident.optouts.v1", 4, compacted=True, description="Opt-outs")
RESIDENT_FLAGS = Topic(
    "resident.flags.v1",
    4,
    compacted=True,
    description="Source-system flags that stop outreach (deceased, open case)",
)
RESIDENT_EVENTS_DEAD_LETTERS = Topic(
    "resident.events.deadletter.v1",
    1,
    description="Records scoring could not read, with the reason in a header",
)

ALL_TOPICS: tuple[Topic, ...] = (
    RESIDENT_EVENTS,
    INGEST_REJECTED,
    RISK_SCORES,
    RISK_SCORES_SHADOW,
    OUTREACH_TASKS,
    NOTIFY_DELIVERIES,
    RESIDENT_OPTOUTS,
    RESIDENT_FLAGS,
    RESIDENT_EVENTS_DEAD_LETTERS,
)
