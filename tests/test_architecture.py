"""The layers of docs/architecture.md hold (import-linter), and its layout matches the tree."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    # the contracts in pyproject.toml: layers (no upward import), no cycles between the modules of a package,
    # independent tasks, and task packages reached only through the registry and serve
    exe = shutil.which("lint-imports") or pytest.fail("lint-imports is not installed (the [dev] extra has it)")
    res = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert re.search(r"Contracts: (\d+) kept, 0 broken", res.stdout), res.stdout[-2000:]
    kept = int(re.search(r"Contracts: (\d+) kept", res.stdout).group(1))
    assert kept >= 4


def test_a_broken_layer_is_caught(tmp_path):
    # the check is real: a copy of the package with one upward import (models -> tasks) breaks the layers
    pkg = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "mumo", pkg / "mumo", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bad = pkg / "mumo" / "models" / "encoders.py"
    bad.write_text(bad.read_text() + "\nfrom mumo.tasks import get_task  # noqa: E402\n")
    exe = shutil.which("lint-imports")
    env = {"PYTHONPATH": str(pkg), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    res = subprocess.run([exe, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode != 0
    assert "mumo.models.encoders -> mumo.tasks" in res.stdout


def test_the_layout_names_every_package_and_module():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    layout = text[text.index("## Layout") :]
    layout = layout[: layout.index("```", layout.index("```") + 3)]
    src = ROOT / "src" / "mumo"
    for path in sorted(src.rglob("*.py")):
        if path.name == "__init__.py" or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(src)
        folder = "src/mumo/" + (f"{rel.parent.as_posix()}/" if rel.parent != Path(".") else "")
        if rel.parent == Path("."):
            assert f"src/mumo/{rel.name}" in layout, f"docs/architecture.md layout misses src/mumo/{rel.name}"
        else:
            assert folder in layout, f"docs/architecture.md layout misses {folder}"
            section = layout[layout.index(folder) :].split("\nsrc/mumo/")[0]
            assert path.stem in section, f"docs/architecture.md layout misses {rel} under {folder}"
