"""The Debezium samples the tests use are copies of the council's data contract
(`../shared/contracts/debezium-samples/`, beside the repository). When the contract is
there, the copies must be the same, so that a change to the contract shows up here."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
COPIES = ROOT / "tests" / "fixtures" / "debezium-samples"
CONTRACT = ROOT.parent / "shared" / "contracts" / "debezium-samples"


def test_the_test_copies_of_the_debezium_samples_match_the_contract():
    if not CONTRACT.is_dir():
        pytest.skip(f"the data contract is not beside the repository ({CONTRACT})")
    contract = {path.name: path.read_bytes() for path in CONTRACT.glob("*.json")}
    copies = {path.name: path.read_bytes() for path in COPIES.glob("*.json")}
    assert contract
    assert copies == contract
