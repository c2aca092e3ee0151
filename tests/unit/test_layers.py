"""The layering of docs/development.md holds, and its check (import-linter's contracts in
pyproject.toml) fails on a wrong import."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_contracts_hold_and_a_planted_wrong_import_breaks_them(tmp_path):
    shutil.copytree(REPO / "sarashina_batch", tmp_path / "sarashina_batch")
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    kept = lint_imports(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "6 kept, 0 broken" in kept.stdout

    # The model core reaching up into the run driver (and, through it, Ray).
    with (tmp_path / "sarashina_batch" / "model" / "batching.py").open("a") as handle:
        handle.write("\nfrom ..run import driver  # planted\n")
    broken = lint_imports(tmp_path)
    assert broken.returncode == 1, broken.stdout
    assert "sarashina_batch.model.batching -> sarashina_batch.run.driver" in broken.stdout
    assert "The model core runs without Ray BROKEN" in broken.stdout


def test_a_planted_cycle_between_sibling_modules_breaks_the_acyclic_contract(tmp_path):
    # prepare imports model_inputs; model_inputs importing prepare back is the cycle that was removed.
    shutil.copytree(REPO / "sarashina_batch", tmp_path / "sarashina_batch")
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    with (tmp_path / "sarashina_batch" / "stages" / "model_inputs.py").open("a") as handle:
        handle.write("\nfrom . import prepare  # planted\n")
    broken = lint_imports(tmp_path)
    assert broken.returncode == 1, broken.stdout
    assert "No import cycles between sibling modules or packages BROKEN" in broken.stdout
