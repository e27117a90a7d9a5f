"""The topic job creates every topic the code uses, as the code expects it; and every
setting the code reads that has no safe production default is set in the Compose and
Kubernetes configuration."""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from shared.topics import ALL_TOPICS

pytestmark = pytest.mark.unit


def _manifests() -> ModuleType:
    """tests/deploy/manifests.py, imported by path (a conftest.py here would hide the root one)."""
    name = "proactive_deploy_manifests"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("manifests.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return _manifests().rendered_overlays()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _manifests().compose_file()


ROOT = Path(__file__).resolve().parents[2]
TOPICS = ROOT / "deploy/base/kafka/topics.txt"


def topic_job_lines() -> dict[str, tuple[int, str, str]]:
    lines = {}
    for line in TOPICS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, partitions, cleanup, days = line.split()
            lines[name] = (int(partitions), cleanup, days)
    return lines


def topics_the_code_uses() -> dict[str, tuple[int, bool]]:
    from ingest.domain.mapping import load_mapping
    from ingest.entrypoints.consumers import cdc_topics
    from ingest.settings import IngestSettings
    from scoring.app import STATE_CHANGELOG

    used = {t.name: (t.partitions, t.compacted) for t in (*ALL_TOPICS, STATE_CHANGELOG)}
    settings = IngestSettings()
    for name in cdc_topics(load_mapping(settings.mapping_path), settings.cdc_prefix):
        used[name] = (0, False)  # Debezium's topics: any partition count will do
    return used


def test_every_topic_the_code_uses_is_created_with_its_partitions_and_cleanup_policy():
    created = topic_job_lines()
    for name, (partitions, compacted) in topics_the_code_uses().items():
        assert name in created, f"the topic job does not create {name}"
        made_partitions, cleanup, days = created[name]
        if partitions:
            assert made_partitions == partitions, name
        assert cleanup == ("compact" if compacted else "delete"), name
        assert (days == "-") == compacted, name
        if not compacted:
            assert int(days) >= 7, f"{name} keeps records under a week"


def test_the_topic_script_asks_kafka_for_each_topic_with_replication_and_retention(tmp_path):
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "kafka-topics.sh"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    environment = {
        **os.environ,
        "KAFKA_BOOTSTRAP": "kafka:9092",
        "REPLICATION_FACTOR": "3",
        "MIN_INSYNC_REPLICAS": "2",
        "KAFKA_TOPICS_BIN": str(fake),
    }
    subprocess.run(
        ["bash", str(ROOT / "deploy/base/kafka/create-topics.sh")],
        env=environment,
        check=True,
        capture_output=True,
        timeout=60,
    )
    creates = [line.split() for line in calls.read_text().splitlines() if "--create" in line]
    assert len(creates) == len(topic_job_lines())
    by_topic = {c[c.index("--topic") + 1]: " ".join(c) for c in creates}
    events = by_topic["resident.events.v1"]
    assert "--partitions 4 --replication-factor 3" in events
    assert "retention.ms=2592000000" in events and "min.insync.replicas=2" in events
    assert "cleanup.policy=compact" in by_topic["resident.optouts.v1"]
    assert "--if-not-exists" in events


# --- settings ----------------------------------------------------------------------------

# Defaults that are only right on a developer's machine: published secrets, loopback
# addresses, SQLite in a local folder, and what production requires to be set.
ALWAYS_REQUIRED = {
    "environment",
    "kafka_bootstrap",
    "bind_host",
    "data_dir",
    "traces_to_file",
    "service_token",
    "ingest_database_url",
    "outreach_database_url",
    "notify_database_url",
    "oidc_issuer",
    "oidc_client_id",
    "oidc_client_secret",
    "notify_public_url",
}


def settings_classes() -> dict[str, type[BaseSettings]]:
    from ingest.settings import IngestSettings
    from notify.settings import NotifySettings
    from outreach.settings import OutreachSettings
    from scoring.settings import ScoringSettings

    return {
        "ingest": IngestSettings,
        "scoring": ScoringSettings,
        "outreach": OutreachSettings,
        "notify": NotifySettings,
    }


def unsafe_by_default(name: str, default: Any) -> bool:
    text = str(default)
    return (
        name in ALWAYS_REQUIRED
        or "127.0.0.1" in text
        or "localhost" in text
        or "dev-only" in text
        or (name.endswith(("_secret", "_key", "_token")) and default is not None)
    )


def required_settings() -> dict[str, set[str]]:
    required = {}
    for service, settings in settings_classes().items():
        required[service] = {
            f"PROACTIVE_{name.upper()}"
            for name, field in settings.model_fields.items()
            if unsafe_by_default(name, field.default)
        } | {"OTEL_EXPORTER_OTLP_ENDPOINT"}  # read by shared.telemetry, not a settings class
    return required


def env_file_keys(path: Path) -> set[str]:
    keys = set()
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            keys.add(line.split("=", 1)[0])
    return keys


def test_the_settings_check_finds_the_settings_that_matter():
    required = required_settings()
    assert "PROACTIVE_PSEUDONYM_KEY" in required["ingest"]
    assert "PROACTIVE_OUTREACH_SESSION_SECRET" in required["outreach"]
    assert "PROACTIVE_INGEST_URL" in required["notify"]
    assert "PROACTIVE_SCORING_PORT" not in required["scoring"]


def test_every_setting_without_a_safe_default_is_set_in_compose(compose):
    from_env_file = env_file_keys(ROOT / ".env.example")
    for service, names in required_settings().items():
        environment = set(compose["services"][service]["environment"]) | from_env_file
        missing = names - environment
        assert not missing, f"{service} in docker-compose.yml lacks {sorted(missing)}"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_setting_without_a_safe_default_is_set_in_kubernetes(rendered, overlay):
    resources = {(r["kind"], r["metadata"]["name"]): r for r in rendered[overlay]}
    for service, names in required_settings().items():
        deployment = resources[("Deployment", service)]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        keys = {v["name"] for v in container.get("env", [])}
        for source in container.get("envFrom", []):
            kind, reference = (
                ("ConfigMap", "configMapRef")
                if "configMapRef" in source
                else (
                    "Secret",
                    "secretRef",
                )
            )
            data = resources[(kind, source[reference]["name"])]
            keys |= set(data.get("data", {})) | set(data.get("stringData", {}))
        missing = names - keys
        assert not missing, f"{service} in the {overlay} overlay lacks {sorted(missing)}"
