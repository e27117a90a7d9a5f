"""What the deployment tests read (a helper, not a conftest.py: a second conftest would hide
the root one from `from conftest import ...`): the Compose file, and the Kubernetes manifests rendered
per overlay by a small subset of kustomize (resources, namespace, images, ConfigMap
generators, strategic-merge patches from files and JSON 6902 patches with a target):
exactly the features deploy/ uses, so a manifest that kustomize would build differently
fails here rather than passing unseen. No kustomize binary is needed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("dev", "prod")
Resource = dict[str, Any]


def load_documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge as kustomize does it for what deploy/ patches: maps merge, `null`
    deletes, lists of named items (containers, env, ports) merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = _merge(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(item, dict) and "name" in item for item in base + patch)
    ):
        merged_list = [copy.deepcopy(item) for item in base]
        for item in patch:
            for index, existing in enumerate(merged_list):
                if existing["name"] == item["name"]:
                    merged_list[index] = _merge(existing, item)
                    break
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(patch)


def _json6902(resource: Resource, operations: list[dict[str, Any]]) -> None:
    for operation in operations:
        *parents, last = [p for p in operation["path"].split("/") if p]
        target: Any = resource
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if operation["op"] == "remove":
            del target[last]
        elif operation["op"] in ("add", "replace"):
            target[last] = operation["value"]
        else:
            raise AssertionError(f"unsupported JSON patch operation {operation['op']}")


def _find(resources: list[Resource], kind: str, name: str) -> Resource:
    for resource in resources:
        if resource["kind"] == kind and resource["metadata"]["name"] == name:
            return resource
    raise AssertionError(f"a patch targets {kind}/{name}, which the base does not define")


def _images(resource: Resource, images: list[dict[str, str]]) -> None:
    spec = resource.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) if "template" in spec else {}
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for image in images:
            if container["image"] == image["name"]:
                container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"


def render(directory: Path) -> list[Resource]:
    """`kustomize build directory`, for the subset of kustomize deploy/ uses."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    known = {
        "apiVersion", "kind", "resources", "namespace", "images", "patches",
        "generatorOptions", "configMapGenerator",
    }  # fmt: skip
    assert set(kustomization) <= known, (
        f"kustomize features the test cannot render: {set(kustomization) - known}"
    )
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        resources += render(path) if path.is_dir() else load_documents(path)
    for generator in kustomization.get("configMapGenerator", []):
        data = {Path(f).name: (directory / f).read_text() for f in generator["files"]}
        resources.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )
    for patch in kustomization.get("patches", []):
        if "path" in patch:
            for document in load_documents(directory / patch["path"]):
                target = _find(resources, document["kind"], document["metadata"]["name"])
                resources[resources.index(target)] = _merge(target, document)
        else:
            body = yaml.safe_load(patch["patch"])
            selector = patch["target"]
            matched = [
                r
                for r in resources
                if r["kind"] == selector["kind"]
                and selector.get("name", r["metadata"]["name"]) == r["metadata"]["name"]
            ]
            assert matched, f"the patch target {selector} matches nothing"
            for resource in matched:
                if isinstance(body, list):
                    _json6902(resource, body)
                else:
                    resources[resources.index(resource)] = _merge(resource, body)
    for resource in resources:
        _images(resource, kustomization.get("images", []))
        if "namespace" in kustomization:
            resource["metadata"]["namespace"] = kustomization["namespace"]
    return resources


def rendered_overlays() -> dict[str, list[Resource]]:
    """Each overlay's manifests, as `kubectl apply -k deploy/overlays/<name>` would see them."""
    return {overlay: render(DEPLOY / "overlays" / overlay) for overlay in OVERLAYS}


def compose_file() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())
