"""The report of a trained run (``mumo report``), timed, and a full-page screenshot of it in headless Chromium.

    python benchmarks/report_screenshot.py [RUN] [--images 200] [--mc-samples 10] [--html report.html]
    # default RUN: benchmarks/runs/easy-vqa-default; writes benchmarks/results/report_screenshot.png

The page is opened from its file with the network unused: the script fails if any image is not drawn or the
page asks for anything but itself. The HTML goes to a temporary folder unless ``--html`` names a file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
DEFAULT_RUN = HERE / "runs" / "easy-vqa-default"
SCREENSHOT = HERE / "results" / "report_screenshot.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def screenshot(page_file: Path, png: Path) -> dict:
    """Open ``page_file`` in headless Chromium, check every image is drawn and nothing else was requested, and save
    a full-page screenshot to ``png``."""
    from playwright.sync_api import sync_playwright

    url, requests = page_file.resolve().as_uri(), []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            drawn = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
            png.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(png), full_page=True)
        finally:
            browser.close()
    others = [u for u in requests if u != url and not u.startswith("data:")]
    if not all(drawn) or others:
        raise SystemExit(f"{sum(not d for d in drawn)} images not drawn; requests other than the page: {others}")
    return {"images_drawn": len(drawn), "requests_other_than_the_page": others}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", nargs="?", type=Path, default=DEFAULT_RUN)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--mc-samples", type=int, default=10)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--html", type=Path, default=None, help="keep the HTML here (default: a temporary file)")
    ap.add_argument("--out", type=Path, default=SCREENSHOT, help="the screenshot PNG")
    args = ap.parse_args()
    if not (args.run / "artifacts.json").exists():
        raise SystemExit(f"no trained run at {args.run}: train one (benchmarks/train_easy_vqa.py) or name one")
    from mumo.serve.report import ReportOptions, write_report

    with tempfile.TemporaryDirectory() as tmp:
        html = args.html or Path(tmp) / "report.html"
        options = ReportOptions(images=args.images, mc_samples=args.mc_samples, device=args.device)
        start = time.perf_counter()  # each step's line says when it began: where the time goes
        log = lambda line: print(f"[{time.perf_counter() - start:5.1f} s] {line}", file=sys.stderr)  # noqa: E731
        res = write_report(args.run, html, options, log=log)
        t0 = time.perf_counter()
        shot = screenshot(html, args.out)
        summary = {
            "run": str(args.run), "images": args.images, "mc_samples": args.mc_samples,
            "report_seconds": round(res["seconds"], 1), "screenshot_seconds": round(time.perf_counter() - t0, 1),
            "html_bytes": html.stat().st_size, "sections": res["sections"], "notes": res["notes"],
            "screenshot": str(args.out), **shot,
        }  # fmt: skip
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
