"""The Kubernetes manifests, rendered per overlay, are valid and keep the platform's rules:
probes, resources, autoscaling, scoring bounded by partitions, disruption budgets, the
network policy around ingest's vault, and Jobs for migrations and topics."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest

from shared.topics import RESIDENT_EVENTS

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


KUBERNETES_VERSION = "1.31"
SERVICES = ("ingest", "scoring", "outreach", "notify")
PORTS = {"ingest": 8001, "scoring": 8002, "outreach": 8003, "notify": 8004}
OVERLAYS = ("dev", "prod")


def find(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def containers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    pod = resource["spec"]["template"]["spec"]
    return pod.get("initContainers", []) + pod["containers"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_manifest_validates_against_the_kubernetes_schemas(rendered, overlay):
    problems = []
    for resource in rendered[overlay]:
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            problems.append(
                f"{resource['kind']}/{resource['metadata']['name']}: {path}: {error.message}"
            )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_a_deployment_a_service_probes_and_resources(rendered, overlay):
    for name in SERVICES:
        deployment = find(rendered[overlay], "Deployment", name)
        service = find(rendered[overlay], "Service", name)
        assert service["spec"]["ports"][0]["port"] == PORTS[name]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["ports"][0]["containerPort"] == PORTS[name]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), (name, bound)
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_outreach_and_notify_autoscale_and_scoring_is_bounded_by_partitions(
    rendered, overlay
):
    resources = rendered[overlay]
    for name in ("ingest", "outreach", "notify"):
        hpa = find(resources, "HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    scalers = [
        r["spec"]["scaleTargetRef"]["name"]
        for r in resources
        if r["kind"] == "HorizontalPodAutoscaler"
    ]
    assert "scoring" not in scalers, "scoring's replicas are bounded by partitions, not scaled"
    replicas = find(resources, "Deployment", "scoring")["spec"]["replicas"]
    assert 1 <= replicas <= RESIDENT_EVENTS.partitions


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget_that_selects_its_pods(rendered, overlay):
    resources = rendered[overlay]
    for name in SERVICES:
        budget = find(resources, "PodDisruptionBudget", name)
        labels = find(resources, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_notify_outreach_and_the_ingress_controller_may_reach_ingest(rendered, overlay):
    policies = [r for r in rendered[overlay] if r["kind"] == "NetworkPolicy"]
    deny_all = [
        p for p in policies if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")
    ]
    assert deny_all, "a default-deny policy must cover every pod"
    to_ingest = [
        p
        for p in policies
        if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == "ingest"
    ]
    peers = [peer for p in to_ingest for rule in p["spec"]["ingress"] for peer in rule["from"]]
    pods = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for peer in peers
        if "podSelector" in peer
    }
    namespaces = [peer["namespaceSelector"] for peer in peers if "namespaceSelector" in peer]
    assert pods == {"notify", "outreach"}
    assert all("podSelector" in peer or "namespaceSelector" in peer for peer in peers)
    assert namespaces == [{"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}]
    # ...and the ingress controller is only ever sent ingest's public /v1/ paths.
    ingress = find(rendered[overlay], "Ingress", "proactive")
    ingest_paths = [
        path["path"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
        if path["backend"]["service"]["name"] == "ingest"
    ]
    assert ingest_paths == ["/v1/"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_configmap_and_secret_a_pod_uses_is_defined(rendered, overlay):
    resources = rendered[overlay]
    defined = {(r["kind"], r["metadata"]["name"]) for r in resources}
    for resource in resources:
        if resource["kind"] not in ("Deployment", "Job"):
            continue
        pod = resource["spec"]["template"]["spec"]
        for container in containers(resource):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert ("ConfigMap", source["configMapRef"]["name"]) in defined
                if "secretRef" in source:
                    assert ("Secret", source["secretRef"]["name"]) in defined
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {})
                if "secretKeyRef" in reference:
                    assert ("Secret", reference["secretKeyRef"]["name"]) in defined
                if "configMapKeyRef" in reference:
                    assert ("ConfigMap", reference["configMapKeyRef"]["name"]) in defined
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in defined


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migration_job_migrates_every_service_that_has_tables(rendered, overlay):
    job = find(rendered[overlay], "Job", "proactive-migrate")
    commands = [c["command"] for c in containers(job)]
    assert commands == [["python", "-m", s, "migrate"] for s in ("ingest", "outreach", "notify")]


def test_secrets_in_the_manifests_are_placeholders_the_services_refuse(rendered):
    for overlay in OVERLAYS:
        for secret in (r for r in rendered[overlay] if r["kind"] == "Secret"):
            for key, value in secret["stringData"].items():
                assert "REPLACE-ME" in value, f"{secret['metadata']['name']}.{key} looks real"


def test_production_images_come_from_a_registry_at_a_fixed_version(rendered):
    for resource in rendered["prod"]:
        if resource["kind"] in ("Deployment", "Job"):
            for container in containers(resource):
                name, _, tag = container["image"].rpartition(":")
                assert name and tag and tag != "latest", container["image"]
