"""``mumo report``: one self-contained HTML page per run, on a tiny trained VQA run and a tiny lip-sync expert run.

The page must load nothing (every image a ``data:`` URI, no script, no style sheet, no link out), hold the
sections that apply to the run's task, leave the run directory as it was, be written whole or not at all, and
open in a headless browser with every image drawn and no request but the file itself.
"""

from __future__ import annotations

import base64
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mumo.serve import report
from mumo.serve.report import ReportOptions, curve_panels, write_report
from tests.cli._invoke import assert_clear_error, run_cli

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
TINY_SYNC = ["model.face_channels=[8,8,16,16,32,32]", "model.audio_channels=[8,16,16,32]", "model.embedding=32",
             "data.pairs_per_epoch=64", "data.eval_pairs=32", "train.epochs=2", "train.batch_size=32"]  # fmt: skip


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``folder``: relative path -> (size, modification time in ns)."""
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


class Page(HTMLParser):
    """The tags and attributes of a page, collected."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]


@pytest.fixture(scope="module")
def vqa_report(tiny_run, tmp_path_factory):
    before = snapshot(tiny_run)
    out = tmp_path_factory.mktemp("report") / "tiny.html"
    res = write_report(tiny_run, out, ReportOptions(images=20, mc_samples=3, examples=2, device="cpu"))
    return {"out": out, "res": res, "html": out.read_text(encoding="utf-8"), "before": before,
            "after": snapshot(tiny_run)}  # fmt: skip


@pytest.fixture(scope="module")
def sync_run(tmp_path_factory) -> Path:
    from mumo.tasks.sync.config import load_sync_config
    from mumo.tasks.sync.task import train_sync
    from tests.tasks.sync.test_sync import make_layout

    layout = make_layout(tmp_path_factory.mktemp("faces"))
    out = tmp_path_factory.mktemp("runs") / "sync"
    train_sync(load_sync_config("sync-cpu", [f"data.root={layout}", *TINY_SYNC]), out, progress=False)
    return out


def test_a_vqa_report_holds_every_section(vqa_report):
    page, res = vqa_report["html"], vqa_report["res"]
    ids = [a["id"] for a in Page(page).all("section")]
    assert ids == ["run", "curves", "test-metrics", "uncertainty", "explanations", "probe"], ids
    assert res["notes"] == [] and res["task"] == "vqa"
    assert "<details><summary>config.yaml</summary>" in page and "preset: mcan-cpu" in page
    assert "parameters" in page and " M)" in page  # the parameter count
    for text in ("Per question type", "yes/no", "color", "shape", "Reliability diagram", "Risk–coverage",
                 "noise OOD set", "Grad-CAM", "U-CAM", "pointing game", "looks at the image"):  # fmt: skip
        assert text in page, text
    # curves, 5 uncertainty plots (reliability, right/wrong, risk-coverage, 2 OOD histograms), 2 x 3 example maps
    assert len(Page(page).all("img")) == 1 + 5 + 6


def test_the_report_is_self_contained(vqa_report):
    page = Page(vqa_report["html"])
    assert not page.all("script") and not page.all("link") and not page.all("iframe")
    for img in page.all("img"):
        head, _, data = img["src"].partition(",")
        assert head == "data:image/png;base64"
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for _, attrs in page.tags:
        for key in ("src", "href", "srcset", "poster", "data"):
            value = attrs.get(key) or ""
            assert value.startswith(("data:", "#")) or not value, (key, value[:80])
    assert "http://" not in vqa_report["html"] and "https://" not in vqa_report["html"]
    assert "url(" not in vqa_report["html"] and "@import" not in vqa_report["html"]


def test_the_report_leaves_the_run_unchanged(vqa_report):
    assert vqa_report["after"] == vqa_report["before"]
    assert not list(vqa_report["out"].parent.glob(".*.tmp"))


def test_the_report_opens_offline_in_a_browser(vqa_report, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed")
    url = vqa_report["out"].resolve().as_uri()
    requests = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            drawn = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert len(drawn) == 12 and all(drawn)
    assert all(u == url or u.startswith("data:") for u in requests), requests
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_a_sync_report_through_the_cli_has_its_curves_and_says_what_it_leaves_out(sync_run):
    before = snapshot(sync_run)
    result = run_cli("report", sync_run, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "left out: evaluation" in result.output and "mumo sync" in result.output
    out = sync_run / "report.html"  # the default: inside the run, its only change
    after = snapshot(sync_run)
    assert {k: v for k, v in after.items() if k != "report.html"} == before and "report.html" in after
    page = out.read_text(encoding="utf-8")
    assert [a["id"] for a in Page(page).all("section")] == ["run", "curves", "evaluation"]
    assert "eval_loss" in page and "class='note'" in page and "sync-cpu" in page
    assert len(Page(page).all("img")) == 1
    out.unlink()


def test_bad_runs_and_options_are_one_line_errors(tmp_path, sync_run):
    assert_clear_error(run_cli("report", tmp_path / "missing"), "does not exist")
    (tmp_path / "notes.txt").write_text("not a run")
    assert_clear_error(run_cli("report", tmp_path), "is not a mumo run")
    assert_clear_error(run_cli("report", sync_run, "--images", "0"), "--images")
    assert_clear_error(run_cli("report", sync_run, "--ood", "moon"), "unknown OOD set")
    assert_clear_error(run_cli("report", sync_run, "--out", tmp_path / "no" / "r.html"), "does not exist")
    assert_clear_error(run_cli("report", sync_run, "--out", tmp_path), "is a folder")
    assert not (sync_run / "report.html").exists()


def test_a_report_that_fails_writes_nothing(sync_run, tmp_path, monkeypatch):
    out = tmp_path / "r.html"

    def broken(ctx):
        raise RuntimeError("the curves broke")

    monkeypatch.setattr(report, "curves_section", broken)
    with pytest.raises(RuntimeError, match="the curves broke"):
        write_report(sync_run, out, ReportOptions(device="cpu"))
    assert os.listdir(tmp_path) == []
    out.write_text("the previous report")
    with pytest.raises(RuntimeError):
        write_report(sync_run, out, ReportOptions(device="cpu"))
    assert out.read_text() == "the previous report" and os.listdir(tmp_path) == ["r.html"]


def test_a_task_section_that_fails_becomes_a_note(sync_run, tmp_path, monkeypatch):
    def evaluation(ctx):
        raise RuntimeError("no figures today")

    monkeypatch.setattr(report, "evaluation", evaluation)
    res = write_report(sync_run, tmp_path / "r.html", ReportOptions(device="cpu"))
    assert res["notes"] == ["evaluation: no figures today"]
    assert "Left out: no figures today" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_the_shadow_of_a_run_keeps_writes_out_of_it(sync_run, tmp_path):
    before = snapshot(sync_run)
    shadow = report.shadow_run(sync_run, tmp_path / "shadow")
    (shadow / "plots").mkdir()
    (shadow / "plots" / "a.png").write_bytes(b"x")
    (shadow / "state.json").unlink()  # as an atomic replace does
    (shadow / "state.json").write_text("{}")
    assert snapshot(sync_run) == before
    shutil.rmtree(shadow)
    assert snapshot(sync_run) == before


def test_curve_panels_group_a_metric_with_its_breakdowns():
    history = [{"epoch": 0, "lr": 1e-3, "train_loss": 2.0, "eval_loss": 1.0, "accuracy": 0.5, "accuracy_color": 0.4,
                "mel_l1": 1.0, "neg_mel_l1": -1.0, "epoch_seconds": 3.0, "train_seconds": 3.0,
                "note": "x"}]  # fmt: skip
    assert curve_panels(history) == {
        "loss": ["train_loss", "eval_loss"], "accuracy": ["accuracy", "accuracy_color"], "mel_l1": ["mel_l1"],
        "neg_mel_l1": ["neg_mel_l1"], "learning rate": ["lr"],
    }  # fmt: skip
