"""docs/development.md's module map is the one the modules' docstrings make, so it lists every
module of the package and says what its own docstring says."""

from pathlib import Path

from tests.support.module_map import PACKAGE, module_map


def test_the_module_map_in_the_docs_is_current():
    # Regenerate with: python -m tests.support.module_map --write
    docs = (Path(__file__).resolve().parents[2] / "docs" / "development.md").read_text()
    assert module_map() in docs


def test_every_module_is_in_the_map_with_a_docstring():
    generated = module_map()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative == Path("__init__.py"):
            continue
        name = relative.as_posix() if relative.name != "__init__.py" else relative.parent.as_posix() + "/"
        line = next((line for line in generated.splitlines() if line.startswith(f"- `{name}`: ")), None)
        assert line is not None and len(line) > len(f"- `{name}`: ") + 10, f"{name} has no docstring to map"
