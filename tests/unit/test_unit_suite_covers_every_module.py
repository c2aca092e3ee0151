"""The unit suite reaches every module of the package without Ray: a module is imported by a unit
test, or its code runs in a whole run in this process (run/runners.py's InProcessRunner). Only
the modules that exist to drive Ray are left to the end-to-end tests, and each says why."""

import ast
import re
import sys
from pathlib import Path

from sarashina_batch.cli import main
from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.run.runners import InProcessRunner
from tests.support import job_config

PACKAGE = Path(__file__).resolve().parents[2] / "sarashina_batch"
UNIT_TESTS = Path(__file__).resolve().parent

# Modules whose whole job is Ray's: tests/e2e runs them.
RAY_ONLY = {
    "sarashina_batch.run.graph": "builds the Ray Data graph",
    "sarashina_batch.run.ray_runner": "the runner on a Ray cluster",
    "sarashina_batch.run.attempts": "a registry actor that bounds a unit's attempts",
    "sarashina_batch.commands.duplicates": "a Ray Data job over the whole output",
}


def package_modules() -> set[str]:
    return {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py"
    }


def imported_by_unit_tests() -> set[str]:
    """Modules a unit test imports, and the commands it runs through the CLI (main(["verb", ...]))."""
    names: set[str] = set()
    for path in UNIT_TESTS.rglob("test_*.py"):
        text = path.read_text(encoding="utf-8")
        verbs = re.findall(r"\bmain\(\s*\[\s*\"([a-z]+)\"", text)
        names.update(f"sarashina_batch.commands.{verb}" for verb in verbs)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sarashina_batch"):
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names if alias.name.startswith("sarashina_batch"))
    return names


def executed_by_a_run(config) -> set[str]:
    """The package's modules whose functions were called during one in-process run."""
    called: set[str] = set()
    root = str(PACKAGE)

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(root):
            called.add(frame.f_code.co_filename)

    sys.setprofile(profile)
    try:
        assert run_job(config, InProcessRunner()) == EXIT_OK
        assert main(["verify", "--output", config.output.uri, "--sample", "5"]) == EXIT_OK
    finally:
        sys.setprofile(None)
    return {".".join(Path(f).relative_to(PACKAGE.parent).with_suffix("").parts) for f in called}


def test_every_module_is_reached_without_ray(tiny_model, corpus_dir, tmp_path):
    # A run with passages, compact vectors and content reuse reaches calibration and reuse too.
    config = job_config(
        str(corpus_dir),
        str(tmp_path / "out"),
        tiny_model,
        output={"vectors": ["float32", "int8", "binary"]},
        reuse={"enabled": True},
    )
    reached = imported_by_unit_tests() | executed_by_a_run(config)
    for module in ("run.lifecycle", "run.driver", "run.calibration", "run.reuse", "run.summary", "run.context"):
        assert f"sarashina_batch.{module}" in reached
    missing = sorted(package_modules() - reached - set(RAY_ONLY))
    assert not missing, f"no unit test reaches {missing}: test them here, or say why they need Ray in RAY_ONLY"
    assert set(RAY_ONLY) <= package_modules(), "RAY_ONLY names a module that is gone"
