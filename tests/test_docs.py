"""The documentation site builds offline with `mkdocs build --strict` (no broken link, no docstring the API
reference cannot read), its front page is the README, and no page loads anything from the internet."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_site_builds_strictly_offline_from_the_readme_and_the_docstrings(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    site = tmp_path / "site"
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "know what they don" in index and 'href="cli/' in index  # the README, its docs/ links made pages
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "mumo.serve.predict.load" in api and "mc_forward" in api
    loaded = set()
    for page in site.rglob("*.html"):
        loaded |= set(re.findall(r'<(?:script|img|link)[^>]*(?:src|href)="(https?://[^"]+)"', page.read_text()))
    assert not loaded, f"pages load from the internet: {sorted(loaded)[:5]}"
