"""Every manifest in infra/ validates against the upstream schemas (KubeRay CRDs vendored in
tests/support/schemas, Kubernetes' own via kubernetes-validate, the Ray cluster launcher's own
validation), names only entrypoints and configs the image holds, and references only
service accounts, volumes, config maps and services that infra/ defines."""

import copy
import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
SCHEMAS = Path(__file__).resolve().parents[1] / "support" / "schemas" / "kuberay"
KUBERAY_TAGS = ("v1.6.2", "v1.7.0")
KUBERAY_KINDS = {"RayJob": "rayjobs", "RayCluster": "rayclusters", "RayCronJob": "raycronjobs"}
KUBERNETES_VERSION = "1.30"


def manifests() -> list[tuple[str, dict]]:
    """(file name, object) of every Kubernetes object in infra/ (the launcher config and the
    kustomization are not objects)."""
    found = []
    for path in sorted(INFRA.glob("*.yaml")):
        if path.name in ("aws-cluster.yaml", "kustomization.yaml"):
            continue
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def strict(schema: dict) -> dict:
    """The CRD schema with unknown fields rejected (as `kubectl apply --validate=strict`
    does), except where the schema keeps unknown fields on purpose."""
    node = copy.deepcopy(schema)

    def tighten(item):
        if isinstance(item, dict):
            if (
                "properties" in item
                and "additionalProperties" not in item
                and not item.get("x-kubernetes-preserve-unknown-fields")
            ):
                item["additionalProperties"] = False
            for value in item.values():
                tighten(value)
        elif isinstance(item, list):
            for value in item:
                tighten(value)

    tighten(node)
    return node


def test_infra_holds_each_kind_we_document():
    kinds = sorted(obj["kind"] for _, obj in manifests())
    assert kinds == sorted(
        [
            "RayJob",
            "RayCronJob",
            "RayCluster",
            "CronJob",
            "ServiceAccount",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "PersistentVolumeClaim",
            "Job",
        ]
    )


@pytest.mark.parametrize("tag", KUBERAY_TAGS)
def test_kuberay_resources_match_the_crds(tag):
    checked = 0
    for name, obj in manifests():
        if obj["kind"] not in KUBERAY_KINDS:
            continue
        crd = json.loads((SCHEMAS / f"{tag}-{KUBERAY_KINDS[obj['kind']]}.json").read_text())
        assert obj["apiVersion"] == crd["apiVersion"], name
        jsonschema.validate(obj, strict(crd["schema"]))
        checked += 1
    assert checked == 3


def test_strict_validation_catches_a_misspelt_field():
    crd = json.loads((SCHEMAS / f"{KUBERAY_TAGS[-1]}-rayjobs.json").read_text())
    [(_, rayjob)] = [(n, o) for n, o in manifests() if o["kind"] == "RayJob"]
    broken = copy.deepcopy(rayjob)
    broken["spec"]["rayClusterSpec"]["enableIntreeAutoscaling"] = True
    with pytest.raises(jsonschema.ValidationError, match="enableIntreeAutoscaling"):
        jsonschema.validate(broken, strict(crd["schema"]))


def test_kubernetes_objects_match_the_upstream_schemas():
    import kubernetes_validate

    checked = 0
    for _, obj in manifests():
        if obj["kind"] in KUBERAY_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked == 7


def test_the_cluster_launcher_config_passes_rays_own_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load((INFRA / "aws-cluster.yaml").read_text()))
    validate_config(config)
    gpu = config["available_node_types"]["gpu_spot"]
    assert gpu["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert config["available_node_types"]["head"]["resources"].get("GPU", 0) == 0


def rayjob_spec() -> dict:
    [rayjob] = [o for _, o in manifests() if o["kind"] == "RayJob"]
    return rayjob["spec"]


def test_the_nightly_raycronjob_runs_exactly_the_rayjob_spec():
    [cron] = [o for _, o in manifests() if o["kind"] == "RayCronJob"]
    assert cron["spec"]["jobTemplate"] == rayjob_spec()
    assert "timeZone" not in cron["spec"]  # KubeRay 1.7+ only; the file must work on 1.6


def test_the_rayjob_autoscales_is_bounded_and_cleans_up():
    spec = rayjob_spec()
    cluster = spec["rayClusterSpec"]
    assert cluster["enableInTreeAutoscaling"] is True
    [gpu] = cluster["workerGroupSpecs"]
    assert gpu["minReplicas"] == 0 < gpu["maxReplicas"]
    pod = gpu["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert spec["activeDeadlineSeconds"] > 0 and spec["ttlSecondsAfterFinished"] <= 600
    assert spec["shutdownAfterJobFinishes"] is True
    for template in (cluster["headGroupSpec"]["template"], gpu["template"], spec["submitterPodTemplate"]):
        assert template["spec"]["serviceAccountName"] == "sarashina-batch"
        for container in template["spec"]["containers"]:
            assert re.fullmatch(r"[^:@]+@sha256:\S+", container["image"]), "deploy images by digest"


def image_paths() -> set[str]:
    """Top-level paths the image's COPY lines put under its WORKDIR."""
    copied = set()
    for line in (INFRA / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY"):
            words = [w for w in shlex.split(line)[1:] if not w.startswith("--")]
            copied.update(w.rstrip("/") for w in words[:-1])
    return copied


def commands() -> list[str]:
    """Every command line the manifests run (entrypoints, container commands, launcher)."""
    lines = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "entrypoint":
                    lines.append(value)
                elif key == "command":
                    lines.append(shlex.join(value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for _, obj in manifests():
        walk(obj)
    return lines


def test_entrypoints_and_configs_exist_in_the_image():
    copied = image_paths()
    assert {"sarashina_batch", "jobs", "configs", "pyproject.toml"} <= copied
    named = [word for line in commands() for word in shlex.split(line) if re.match(r"(jobs|configs)/", word)]
    assert "jobs/reembed.py" in named and "configs/nightly.yaml" in named
    for path in named:
        assert (REPO / path).is_file(), path
        assert path.split("/")[0] in copied, f"{path} is not copied into the image"


def test_the_model_folder_runs_load_is_the_one_the_staging_job_fills():
    [stage] = [o for _, o in manifests() if o["kind"] == "Job"]
    command = stage["spec"]["template"]["spec"]["containers"][0]["command"]
    staged = command[command.index("--local-dir") + 1]
    entry = shlex.split(rayjob_spec()["entrypoint"])
    assert entry[entry.index("--model") + 1] == staged


def test_every_referenced_name_is_defined():
    objects = manifests()
    defined = {(o["kind"], o["metadata"].get("name")) for _, o in objects}
    kustomization = yaml.safe_load((INFRA / "kustomization.yaml").read_text())
    for generated in kustomization["configMapGenerator"]:
        defined.add(("ConfigMap", generated["name"]))
        for file in generated["files"]:
            assert (INFRA / file).is_file()
    for resource in kustomization["resources"]:
        assert (INFRA / resource).is_file()
    references = []

    def walk(node):
        if isinstance(node, dict):
            if "serviceAccountName" in node:
                references.append(("ServiceAccount", node["serviceAccountName"]))
            if "persistentVolumeClaim" in node:
                references.append(("PersistentVolumeClaim", node["persistentVolumeClaim"]["claimName"]))
            if "configMap" in node and "name" in node["configMap"]:
                references.append(("ConfigMap", node["configMap"]["name"]))
            if "roleRef" in node:
                references.append((node["roleRef"]["kind"], node["roleRef"]["name"]))
            for subject in node.get("subjects", []):
                references.append((subject["kind"], subject["name"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for _, obj in objects:
        walk(obj)
    assert references and all(ref in defined for ref in references), sorted(set(references) - defined)
    # A Ray head service is only named where the RayCluster that gets it is defined
    # (KubeRay names it <cluster>-head-svc; a RayJob's cluster has a generated name).
    clusters = {o["metadata"]["name"] for _, o in objects if o["kind"] == "RayCluster"}
    for path in INFRA.iterdir():
        for service in re.findall(r"([a-z0-9-]+)-head-svc", path.read_text()):
            assert service in clusters, f"{path.name} names {service}-head-svc, which no RayCluster here creates"


def test_the_image_installs_a_named_cuda_torch_before_the_package_as_the_ray_user():
    lines = [line.strip() for line in (INFRA / "Dockerfile").read_text().splitlines() if line.strip()]
    torch_install = next(i for i, line in enumerate(lines) if line.startswith("RUN pip install") and "torch==" in line)
    package_install = next(i for i, line in enumerate(lines) if line.startswith("RUN pip install") and '".' in line)
    assert torch_install < package_install and "--index-url" in lines[torch_install]
    users = [line for line in lines[:package_install] if line.startswith("USER")]
    assert users[-1] == "USER ray"
    assert any(line.startswith("RUN mkdir -p /app && chown ray") for line in lines)
    assert all("--chown=ray" in line for line in lines if line.startswith("COPY"))
