"""docker-compose.yml and the Dockerfiles, checked without a Docker engine: the Compose
file against the Compose specification's JSON Schema, every build context and file they
refer to exists, and each image is built the way the production guide says."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

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
def compose() -> dict[str, Any]:
    return _manifests().compose_file()


ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "scoring", "outreach", "notify")
WITH_TABLES = ("ingest", "outreach", "notify")
COMPOSE_SCHEMA = (
    ROOT
    / ".venv/lib/python3.11/site-packages/check_jsonschema/builtin_schemas/vendor/compose-spec.json"
)


def compose_schema() -> dict:
    if not COMPOSE_SCHEMA.exists():
        import check_jsonschema

        vendored = (
            Path(check_jsonschema.__file__).parent / "builtin_schemas/vendor/compose-spec.json"
        )
        return json.loads(vendored.read_text())
    return json.loads(COMPOSE_SCHEMA.read_text())


def test_the_compose_file_validates_against_the_compose_specification(compose):
    misspelt = {
        **compose,
        "services": {
            **compose["services"],
            "kafka": {**compose["services"]["kafka"], "restrat": "no"},
        },
    }
    assert not _valid(misspelt), "the schema check must catch a misspelt key"
    assert _valid(compose, report=True)


def _valid(document: dict, report: bool = False) -> bool:
    schema = compose_schema()
    # The schema is draft 2020-12: an older validator would ignore unevaluatedProperties
    # and let a misspelt key through.
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [
        f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)
    ]
    if report:
        assert not problems, "\n".join(problems)
    return not problems


def test_every_build_context_dockerfile_and_mounted_file_exists(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            context = ROOT / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_the_env_file_is_not_committed_and_its_example_is(compose):
    ignored = (
        subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False).returncode == 0
    )
    assert ignored, ".env must be git-ignored: it holds the secrets"
    assert (ROOT / ".env.example").is_file()
    for name, service in compose["services"].items():
        for env_file in service.get("env_file", []):
            assert env_file["path"] == ".env", name


def test_compose_starts_kafka_in_kraft_mode_from_the_official_image(compose):
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "healthcheck" in kafka


def test_services_wait_for_healthy_dependencies_and_finished_jobs(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
            if condition["condition"] == "service_completed_successfully":
                assert services[dependency]["restart"] == "no", f"{dependency} is not one-shot"
    for name in SERVICES:
        depends = services[name]["depends_on"]
        assert depends["topics"]["condition"] == "service_completed_successfully"
        assert "/healthz" in " ".join(services[name]["healthcheck"]["test"])
    for name in WITH_TABLES:
        job = services[f"migrate-{name}"]
        assert job["command"] == ["python", "-m", name, "migrate"]
        assert services[name]["depends_on"][f"migrate-{name}"]["condition"] == (
            "service_completed_successfully"
        )


def test_each_service_gets_only_its_own_database(compose):
    for name in SERVICES:
        urls = {k for k in compose["services"][name]["environment"] if k.endswith("_DATABASE_URL")}
        assert urls == (
            {f"PROACTIVE_{name.upper()}_DATABASE_URL"} if name in WITH_TABLES else set()
        )


@pytest.mark.parametrize("service", SERVICES)
def test_each_dockerfile_is_a_two_stage_uv_build_that_runs_as_a_user(service):
    text = (ROOT / "services" / service / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    dependencies = f"uv sync --locked --no-install-workspace --package proactive-{service} --no-dev"
    assert dependencies in text
    # The dependencies layer comes before any source is copied.
    assert text.index(dependencies) < text.index(f"COPY services/{service}/src")
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("0", "root"))
    assert re.search(r"^HEALTHCHECK .*", text, re.M) and "/healthz" in text
    assert "PROACTIVE_BIND_HOST=0.0.0.0" in text
    assert f'CMD ["python", "-m", "{service}"]' in text


@pytest.mark.parametrize("service", SERVICES)
def test_everything_a_dockerfile_copies_exists_and_is_sent_to_the_builder(service):
    text = (ROOT / "services" / service / "Dockerfile").read_text().replace("\\\n", " ")
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    included = [line[1:] for line in ignore if line.startswith("!")]
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), f"{service}'s Dockerfile copies missing {source}"
            assert any(
                Path(source).match(pattern) or source.startswith(pattern.rstrip("*"))
                for pattern in included
            ), f"{source} is excluded by .dockerignore"


def test_the_scoring_image_carries_its_models():
    text = (ROOT / "services/scoring/Dockerfile").read_text()
    assert "COPY services/scoring/models /app/models" in text
    assert "PROACTIVE_SCORING_MODELS_DIR=/app/models" in text
    assert list((ROOT / "services/scoring/models").glob("*.onnx"))
