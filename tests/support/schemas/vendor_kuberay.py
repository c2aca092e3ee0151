"""Extract KubeRay CRD schemas from a kuberay git checkout into tests/support/schemas/kuberay/.

python tests/support/schemas/vendor_kuberay.py PATH_TO_KUBERAY_CHECKOUT v1.6.2 v1.7.0
"""

import json
import subprocess
import sys
from pathlib import Path

import yaml

KINDS = ("rayjobs", "rayclusters", "raycronjobs")
OUT = Path(__file__).resolve().parent / "kuberay"


def without_descriptions(node):
    if isinstance(node, dict):
        return {key: without_descriptions(value) for key, value in node.items() if key != "description"}
    if isinstance(node, list):
        return [without_descriptions(value) for value in node]
    return node


def vendor(checkout: str, tag: str, plural: str) -> None:
    path = f"ray-operator/config/crd/bases/ray.io_{plural}.yaml"
    text = subprocess.run(
        ["git", "-C", checkout, "show", f"{tag}:{path}"], capture_output=True, text=True, check=True
    ).stdout
    crd = yaml.safe_load(text)
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    payload = {
        "source": f"github.com/ray-project/kuberay {tag} {path} (descriptions removed)",
        "kind": crd["spec"]["names"]["kind"],
        "apiVersion": f"{crd['spec']['group']}/v1",
        "schema": without_descriptions(version["schema"]["openAPIV3Schema"]),
    }
    (OUT / f"{tag}-{plural}.json").write_text(json.dumps(payload, separators=(",", ":"), sort_keys=True))


if __name__ == "__main__":
    checkout, *tags = sys.argv[1:]
    for tag in tags:
        for plural in KINDS:
            vendor(checkout, tag, plural)
