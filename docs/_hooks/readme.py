"""MkDocs hook: the README is the site's front page (index.md), its links to docs/ rewritten to the pages, and
the benchmark figures the pages show are carried into the site."""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files


def on_files(files: Files, config) -> Files:
    root = Path(config["config_file_path"]).parent
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    text = re.sub(r"\]\(docs/", "](", text)  # docs/x.md -> x.md
    files.append(File.generated(config, "index.md", content=text))
    for png in sorted((root / "benchmarks" / "results").glob("*.png")):  # the figures the pages show
        files.append(File.generated(config, f"benchmarks/results/{png.name}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    """A page's ``../benchmarks/results/X.png`` (right on GitHub) points at the copy the site carries."""
    return markdown.replace("](../benchmarks/results/", "](benchmarks/results/")
