"""The report of one run (``mumo report RUN``): one self-contained HTML page, every figure inlined.

What the page holds, whichever applies to the run's task (:func:`mumo.tasks.task_of_run`):

- a header (run path, task, preset, dates, parameter count) and the run's ``config.yaml``, collapsible;
- the training curves of ``state.json``: the loss and every validation metric per epoch;
- the task's evaluation (``task.evaluate``) on a bounded part of the test split: for VQA the metrics per question
  type, the reliability diagram, the risk–coverage curves and the OOD histograms (MC dropout, an OOD set); for
  other tasks their figures as a table and the plots they draw;
- tasks that explain their answers (:class:`mumo.tasks.Explains`): the explanation maps' scores against the
  objects' masks and a grid of example overlays (attention, Grad-CAM, U-CAM); tasks that can be probed
  (:class:`mumo.tasks.Probes`): the Clever Hans probe.

A section the run cannot give (a task without an evaluation, a model without dropout, a data set without masks)
is replaced by a note saying why: a report never fails on a task's section. The page loads nothing: images are
``data:`` URIs, the style sheet is inline, there is no script.

The run directory is never written to: the evaluations run on a shadow of it in a temporary folder (its folders
re-created, its files linked), so the plots and sounds they write land there. The page is written atomically,
through a temporary file beside it, once it is complete.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mumo.data._output import check_output_file
from mumo.data.shift.ood import OOD_SETS
from mumo.errors import MumoError, NoOODCheckWarning
from mumo.runs import LOCK_FILE, Run
from mumo.tasks import Explains, Probes, Task, task_of_run
from mumo.train.checkpoint import ARTIFACTS_FILE, CONFIG_FILE, STATE_FILE, atomic_write_text
from mumo.uncertainty.mc_dropout import check_num_samples

REPORT_FILE = "report.html"  # the default output, inside the run
EXPLAIN_METHODS = ("attention", "gradcam", "ucam")  # the columns of the example grid
LIP2SPEECH_CLIPS = 8  # clips a lip-to-speech run is evaluated on (each is synthesised and vocoded)
MAX_TABLE_ROWS = 300  # rows of a generic figures table
MAX_SOUNDS = 6  # WAVs of an evaluation inlined as <audio>
MAX_SOUND_BYTES = 2_000_000
_TIMING = ("epoch", "epoch_seconds", "train_seconds")  # history keys that are not curves
# what every run holds; the header lists the rest (temperature.json, feature_density.safetensors, ...)
_CORE = {CONFIG_FILE, ARTIFACTS_FILE, STATE_FILE, LOCK_FILE, "checkpoints", "logs", "plots", REPORT_FILE}

Log = Callable[[str], None]


@dataclass(frozen=True)
class ReportOptions:
    """How much of the test split the report's evaluations look at; checked before any model is loaded."""

    images: int = 200  # test images of the evaluation, the explanation scores and the probe
    mc_samples: int = 10  # MC-dropout passes of the uncertainty figures (and U-CAM's samples)
    ood: str = "noise"  # OOD set of the OOD histograms (mumo.data.shift.ood.OOD_SETS)
    examples: int = 3  # test questions whose explanation maps are drawn (one per question type first)
    device: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.images, bool) or not isinstance(self.images, int) or self.images < 1:
            raise MumoError(f"--images must be a whole number >= 1, not {self.images!r}")
        check_num_samples(self.mc_samples)
        if self.mc_samples < 2:
            raise MumoError(f"--mc-samples must be at least 2 (an uncertainty needs two passes), not {self.mc_samples}")
        if self.ood not in OOD_SETS:
            raise MumoError(f"unknown OOD set {self.ood!r}; choose one of: {', '.join(OOD_SETS)}")
        if isinstance(self.examples, bool) or not isinstance(self.examples, int) or self.examples < 0:
            raise MumoError(f"--examples must be a whole number >= 0, not {self.examples!r}")


@dataclass
class Section:
    """One part of the page: an anchor, a heading and its HTML body."""

    id: str
    title: str
    body: str


@dataclass
class _Context:
    """What a section builder sees: the run (read only), its shadow (what the task's code is given), a scratch
    folder, the task, the options and a logger."""

    run: Run
    work: Path
    scratch: Path
    task: Task
    options: ReportOptions
    log: Log
    notes: list[str] = field(default_factory=list)


def write_report(
    run: str | Path, out: str | Path | None = None, options: ReportOptions | None = None, log: Log | None = None
) -> dict[str, Any]:
    """Write the report of ``run`` to ``out`` (default ``RUN/report.html``); returns where, the sections, the notes
    of sections left out and the seconds it took.

    Raises:
        CheckpointError: ``run`` does not exist or is not a mumo run.
        MumoError: bad options, or ``out`` cannot be written (both checked before any work).
    """
    start = time.perf_counter()
    options = options or ReportOptions()
    run = Run(run)
    task = task_of_run(run)  # CheckpointError: missing, or not a run
    out = check_output_file(Path(out) if out is not None else run.path / REPORT_FILE, "report", "--out")
    page, sections, notes = render_report(run, task, options, log or (lambda _: None))
    atomic_write_text(out, page)  # a temporary file beside ``out``, renamed: never half a page
    return {
        "out": str(out), "run": str(run), "task": task.name, "sections": [s.title for s in sections],
        "notes": notes, "seconds": time.perf_counter() - start,
    }  # fmt: skip


def render_report(run: Run, task: Task, options: ReportOptions, log: Log) -> tuple[str, list[Section], list[str]]:
    """The page's HTML, its sections and the notes of the sections left out."""
    with tempfile.TemporaryDirectory(prefix="mumo-report-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NoOODCheckWarning)  # the header lists what is attached (ood_check...)
        ctx = _Context(run, shadow_run(run.path, Path(tmp) / run.path.name), Path(tmp) / "scratch", task, options, log)
        ctx.scratch.mkdir()
        sections = [header_section(ctx), curves_section(ctx)]
        for build in task_sections(task):
            sections += _guarded(build, ctx)
    return _page(run, task, sections), sections, ctx.notes


def task_sections(task: Task) -> list[Callable[[_Context], list[Section]]]:
    """The section builders that apply to ``task``: its evaluation, and explanations and the probe when it offers
    them."""
    builders: list[Callable[[_Context], list[Section]]] = [vqa_evaluation if task.name == "vqa" else evaluation]
    if isinstance(task, Explains):
        builders.append(explanations)
    if isinstance(task, Probes):
        builders.append(probe)
    return builders


def _guarded(build: Callable[[_Context], list[Section]], ctx: _Context) -> list[Section]:
    """A task's sections, or one note saying why they are left out (a report never fails on a task's section)."""
    name = build.__name__.replace("_", " ").strip()
    try:
        return build(ctx)
    except Exception as exc:  # any failure of a task's code becomes a note in the page
        why = " ".join(str(exc).split()) or type(exc).__name__
        ctx.notes.append(f"{name}: {why}")
        return [Section(build.__name__.replace("_", "-"), name.capitalize(), _note(f"Left out: {why}"))]


def shadow_run(run_dir: Path, into: Path) -> Path:
    """A copy of ``run_dir`` at ``into`` whose folders are new and whose files are symbolic links to the run's, so
    that whatever a task's code writes there (plots, sounds, a replaced file) stays out of the run. A training
    lock and the run's own ``plots/`` are left out."""
    into.mkdir(parents=True)
    for src, dirs, files in os.walk(run_dir, followlinks=True):  # a folder linked into the run is read too
        rel = Path(src).relative_to(run_dir)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d != "plots"]
            files = [f for f in files if f != LOCK_FILE]
        (into / rel).mkdir(exist_ok=True)
        for name in files:
            (into / rel / name).symlink_to(Path(src, name).resolve())
    return into


# -- header and curves -------------------------------------------------------------------------------------------


def header_section(ctx: _Context) -> Section:
    """Run path, task, preset, dates, parameter count, the report's settings and the config (collapsible)."""
    run, o = ctx.run, ctx.options
    config_path = run.path / CONFIG_FILE
    config_text = config_path.read_text(encoding="utf-8", errors="replace") if config_path.is_file() else None
    preset = "n/a"
    if config_text is not None:
        with contextlib.suppress(MumoError):
            from mumo.config import read_saved_config

            preset = str(read_saved_config(config_path).get("preset", "n/a"))
    rows = [
        ("run", str(run.path.resolve())),
        ("task", f"{ctx.task.name}: {ctx.task.help}"),
        ("preset", preset),
        ("created", _mtime(run.path / ARTIFACTS_FILE)),
        ("last epoch written", _mtime(run.path / STATE_FILE)),
        ("epochs", str(run.finished_epochs)),
        ("attached", ", ".join(sorted(p.name for p in run.path.iterdir() if p.name not in _CORE)) or "nothing"),
        ("parameters", _parameter_count(ctx)),
        ("report written", f"{datetime.now():%Y-%m-%d %H:%M:%S} by mumo {_version()}"),
    ]
    if ctx.task.name == "vqa":
        rows.append(("report settings", f"test images {o.images}, MC-dropout passes {o.mc_samples}, OOD set {o.ood}, "
                                        f"{o.examples} example questions, device {o.device}"))  # fmt: skip
    body = "<table class='kv'>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"
    if config_text is None:
        body += _note(f"{config_path} is missing: no config to show.")
    else:
        body += f"<details><summary>config.yaml</summary><pre>{_e(config_text)}</pre></details>"
    return Section("run", "Run", body)


def _parameter_count(ctx: _Context) -> str:
    try:
        model = ctx.task.load_model(ctx.work, "best", "cpu")
    except Exception as exc:  # a header line, not a reason to fail the page
        return f"n/a ({' '.join(str(exc).split()) or type(exc).__name__})"
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"{total:,} ({total / 1e6:.2f} M)" + (f", {trainable:,} trainable" if trainable != total else "")


def curves_section(ctx: _Context) -> Section:
    """The loss and every validation metric of ``state.json``'s history, one panel per metric (a metric and its
    breakdowns, ``accuracy`` and ``accuracy_color``, share one), and the best epoch's figures."""
    if not (ctx.run.path / STATE_FILE).is_file():
        return Section("curves", "Training curves", _note("No state.json: the run has not finished an epoch."))
    state = ctx.run.state
    history = [h for h in state.get("history", []) if isinstance(h, dict)]
    if not history:
        return Section("curves", "Training curves", _note("state.json holds no finished epoch."))
    best = _epoch_of(state.get("best"))
    panels = curve_panels(history)
    fig = _curves_figure(history, panels, best)
    body = _figure(_figure_uri(fig), "training curves", "Per epoch; the dashed line marks the best checkpoint.")
    row = next((h for h in history if h.get("epoch", -1) + 1 == best), history[-1])
    keys = [k for k in row if k not in _TIMING and _number(row[k]) is not None]
    body += f"<p>Figures of epoch {row.get('epoch', 0) + 1} ({'best' if best else 'last'}):</p>"
    body += _table(["figure", "value"], [[k, _fmt(row[k])] for k in keys])
    return Section("curves", "Training curves", body)


def curve_panels(history: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Panel title -> the history keys drawn in it: every key holding a loss in ``loss``; a key and its breakdowns
    (``accuracy``, ``accuracy_color``) in one; the learning rate last; timings left out."""
    keys: list[str] = []
    for h in history:
        keys += [k for k, v in h.items() if k not in keys and k not in _TIMING and _number(v) is not None]
    panels: dict[str, list[str]] = {}
    for k in keys:
        if k == "lr":
            continue
        if "loss" in k:
            title = "loss"
        else:
            title = next((p for p in keys if k.startswith(p + "_") and "loss" not in p and p != "lr"), k)
        panels.setdefault(title, []).append(k)
    if "lr" in keys:
        panels["learning rate"] = ["lr"]
    return panels


def _curves_figure(history: list[dict[str, Any]], panels: dict[str, list[str]], best: int | None):
    from matplotlib.ticker import MaxNLocator

    from mumo.metrics.figures import new_figure

    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = new_figure((4.2 * cols, 3.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (title, keys) in zip(axes, panels.items(), strict=False):
        for k in keys:
            pts = [(h.get("epoch", i) + 1, _number(h.get(k))) for i, h in enumerate(history)]
            pts = [(x, y) for x, y in pts if y is not None]
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", markersize=3, label=k)
        if best is not None:
            ax.axvline(best, color="gray", linestyle="--", linewidth=1)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if len(keys) > 1:
            ax.legend(fontsize=7)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


# -- evaluation ---------------------------------------------------------------------------------------------------


def evaluation_options(task: Task, options: ReportOptions) -> dict[str, Any]:
    """``task.evaluation_options``' keywords for a report: the test split, bounded by ``options.images``."""
    o = options
    if task.name == "vqa":
        return dict(split="test", images=o.images, mc_samples=o.mc_samples, ood=o.ood, density_images=o.images,
                    question_bank=0, device=o.device, progress=False)  # fmt: skip
    if task.name == "vqg":  # METEOR needs Java and minutes: `mumo evaluate` reports it
        return dict(split="test", images=o.images, mc_samples=o.mc_samples, meteor=False, device=o.device)
    if task.name == "lip2speech":
        return dict(split="test", clips=min(o.images, LIP2SPEECH_CLIPS), device=o.device, progress=False)
    return dict(split="test", device=o.device)


def evaluation(ctx: _Context) -> list[Section]:
    """Any task's evaluation: its figures as a table, and the plots and sounds it wrote."""
    if ctx.task.name == "lipsync":
        ctx.notes.append("evaluation: a lip-sync generator needs --scorer SYNC_RUN (`mumo evaluate`)")
        return [Section("evaluation", "Evaluation", _note(
            "Left out: a lip-sync generator is scored by another lip-sync expert (LSE-D, LSE-C), which the report "
            "is not given; run `mumo evaluate RUN --scorer SYNC_RUN`."))]  # fmt: skip
    kwargs = evaluation_options(ctx.task, ctx.options)
    options = ctx.task.evaluation_options(**kwargs)  # CheckpointError for a task without an evaluation
    ctx.log(f"evaluating {ctx.run} on the test split ...")
    figures = ctx.task.evaluate(ctx.work, options).to_dict()
    body = f"<p>The task's evaluation on the test split ({_e(_settings(kwargs))}).</p>"
    body += figures_table(figures)
    body += _written_files(ctx.work / "plots")
    return [Section("evaluation", "Evaluation", body)]


def vqa_evaluation(ctx: _Context) -> list[Section]:
    """Accuracy and the uncertainty's figures per question type, and the reliability diagram, the risk–coverage
    curves and the OOD histograms; deterministic (no MC dropout) for a model without dropout."""
    kwargs = evaluation_options(ctx.task, ctx.options)
    ctx.log(f"evaluating {ctx.run}: {ctx.options.images} test images, {ctx.options.mc_samples} MC-dropout passes, "
            f"OOD set {ctx.options.ood} ...")  # fmt: skip
    image_encoder = ctx.run.config_section("model").get("image_encoder")
    if image_encoder == "regions":  # an OOD set is drawn as pixels: region features have none
        kwargs["ood"] = None
    said = ""
    try:
        report = ctx.task.evaluate(ctx.work, ctx.task.evaluation_options(**kwargs))
    except MumoError as exc:
        if "dropout" not in str(exc):
            raise
        kwargs["mc_samples"], said = None, "The model has no dropout: its uncertainty is that of one pass. "
        report = ctx.task.evaluate(ctx.work, ctx.task.evaluation_options(**kwargs))
    f = report.to_dict()
    intro = (f"<p>{said}Test split: the first {ctx.options.images} images ({f['num_questions']} questions), "
             f"{_e(_settings(kwargs, 'images'))}.</p>")  # fmt: skip
    metrics = intro + _vqa_headline(f) + "<h3>Per question type</h3>" + _vqa_by_type(f)
    if f.get("auroc_misclassification_by_score"):
        metrics += "<h3>Per uncertainty score</h3>" + _vqa_by_score(f)
    if f.get("selective"):
        metrics += "<h3>Abstaining above a predictive entropy</h3>" + _table(
            ["threshold (nats)", "coverage", "risk", "PAvPU"],
            [[_fmt(s["threshold"]), _fmt(s["coverage"]), _fmt(s["risk"]), _fmt(s["pavpu"])] for s in f["selective"]],
        )
    plots = "".join(
        _figure(_file_uri(Path(p)), Path(p).stem, _plot_caption(Path(p).stem, f)) for p in f.get("plots", [])
    )
    sections = [Section("test-metrics", "Test metrics", metrics)]
    sections.append(Section("uncertainty", "Uncertainty figures", f"<div class='grid'>{plots}</div>" if plots else
                            _note("The evaluation drew no plots.")))  # fmt: skip
    return sections


_VQA_HEADLINE = (
    ("accuracy", "accuracy (VQA score of the deterministic answer)"),
    ("accuracy_mean_prediction", "accuracy of the mean prediction (exact match)"),
    ("ece", "ECE"), ("ace", "ACE (adaptive bins)"), ("mce", "MCE"), ("nll", "NLL"), ("brier", "Brier score"),
    ("auroc_misclassification", "misclassification AUROC (predictive entropy)"),
    ("aupr_misclassification", "misclassification AUPR"), ("aurc", "AURC"),
    ("risk_at_80_coverage", "risk at 80 % coverage"), ("coverage_at_5_risk", "coverage at 5 % risk"),
    ("auroc_ood", "OOD AUROC, per question"), ("auroc_ood_per_image", "OOD AUROC, per image"),
    ("aupr_ood", "OOD AUPR"), ("fpr95_ood", "OOD FPR at 95 % TPR"),
)  # fmt: skip


def _vqa_headline(f: dict[str, Any]) -> str:
    rows = []
    for key, label in _VQA_HEADLINE:
        if key not in f:
            continue
        if key.endswith("_ood") or key == "auroc_ood_per_image":
            label += f" ({f.get('ood_score', '').replace('_', ' ')}; OOD set {f.get('ood_set')})"
        ci = f.get(f"{key}_ci95")
        rows.append([label, _fmt(f[key]), f"{_fmt(ci[0])} – {_fmt(ci[1])}" if ci else ""])
    return _table(["figure", "value", "95 % CI"], rows)


def _vqa_by_type(f: dict[str, Any]) -> str:
    cols = [("accuracy_by_type", "accuracy"), ("auroc_misclassification_by_type", "misclassification AUROC"),
            ("auroc_ood_by_type", "OOD AUROC")]  # fmt: skip
    cols = [(k, label) for k, label in cols if f.get(k)]
    types = sorted({t for k, _ in cols for t in f[k]})
    rows = [["all", *(_fmt(f.get(k.removesuffix("_by_type"))) for k, _ in cols)]]
    rows += [[t, *(_fmt(f[k].get(t)) for k, _ in cols)] for t in types]
    return _table(["question type", *(label for _, label in cols)], rows)


def _vqa_by_score(f: dict[str, Any]) -> str:
    cols = [("auroc_misclassification_by_score", "misclassification AUROC"), ("auroc_ood_by_score", "OOD AUROC"),
            ("auroc_ood_per_image_by_score", "OOD AUROC per image"), ("mean_uncertainty", "mean (test)"),
            ("mean_uncertainty_ood", "mean (OOD)")]  # fmt: skip
    cols = [(k, label) for k, label in cols if f.get(k)]
    scores = list(dict.fromkeys(s for k, _ in cols for s in f[k]))
    return _table(
        ["score", *(label for _, label in cols)], [[s, *(_fmt(f[k].get(s)) for k, _ in cols)] for s in scores]
    )


def _plot_caption(stem: str, f: dict[str, Any]) -> str:
    ood = f"test images against the {f.get('ood_set')} OOD set"
    for prefix, caption in (
        ("reliability", "Reliability diagram: accuracy per confidence bin, and how many answers fall in each."),
        ("uncertainty_correct_wrong", "Predictive entropy of right and wrong answers."),
        ("risk_coverage", "Risk–coverage: the error rate among the answers kept, dropping the most uncertain first."),
        ("uncertainty_ood_feature_density", f"Negative log feature density, {ood}."),
        ("uncertainty_ood_image_mi", f"Image mutual information, {ood}."),
        ("uncertainty_ood", f"{str(f.get('ood_score', 'uncertainty')).replace('_', ' ').capitalize()}, {ood}."),
    ):
        if stem.startswith(prefix):
            return caption
    return stem


# -- explanations and the probe -------------------------------------------------------------------------------------


def explanations(ctx: _Context) -> list[Section]:
    """The maps' scores against the objects' masks over the test images, and a grid of example overlays."""
    o, task = ctx.options, ctx.task
    assert isinstance(task, Explains)
    body = ""
    ctx.log("scoring explanation maps against the objects' masks ...")
    try:
        opts = task.explanation_options("gradcam", samples=o.mc_samples)
        scores = task.explain_run(ctx.work, split="test", opts=opts, max_images=o.images, device=o.device,
                                  progress=False)  # fmt: skip
        body += (f"<p>Maps of {scores['num_questions']} questions about the first {scores['num_images']} test images "
                 f"on the {scores['grid'][0]}×{scores['grid'][1]} feature grid, scored against the masks of the "
                 "objects each question is about.</p>")  # fmt: skip
        body += _table(
            ["method", "map of", "rank correlation", "pointing game", "energy in mask", "undefined"],
            [[m, s.get("target") or "attention weights", _fmt(s["rank_correlation"]), _fmt(s["pointing_game"]),
              _fmt(s["energy_in_mask"]), _fmt(s["undefined"])] for m, s in scores["methods"].items()],
        )  # fmt: skip
        if "attention_gradcam_rank_correlation" in scores:
            agree = _fmt(scores["attention_gradcam_rank_correlation"])
            body += f"<p>Rank correlation of attention and Grad-CAM: {agree}.</p>"
    except MumoError as exc:
        body += _note(f"No scores: {' '.join(str(exc).split())}")
    body += "<h3>Examples</h3>" + _example_grid(ctx)
    return [Section("explanations", "Explanations", body)]


def _example_grid(ctx: _Context) -> str:
    """Overlays of attention, Grad-CAM and U-CAM for a few test questions (easy-VQA: the test images and masks
    come with the ``easy-vqa`` package), each with its scores against the shape's mask."""
    o, task = ctx.options, ctx.task
    assert isinstance(task, Explains)
    if o.examples == 0:
        return _note("No examples asked for (--examples 0).")
    data = ctx.run.config_section("data")
    if data.get("name") != "easy-vqa":
        return _note(f"Example maps are drawn for easy-VQA runs; this run's data set is {data.get('name')!r}.")
    import torch

    from mumo.data.images import load_image
    from mumo.data.vqa.masks import easy_vqa_shape_masks, pool_to_grid
    from mumo.metrics.attention import summarize_map_scores

    ctx.log(f"drawing explanation maps of {o.examples} test questions ...")
    size = int(data.get("image_size", 64))
    rows = []
    for i, ex in enumerate(easy_vqa_examples(o.examples)):
        pixels = load_image(ex["image"], size=size)  # (H, W, 3) uint8
        mask = easy_vqa_shape_masks(torch.from_numpy(pixels).permute(2, 0, 1)[None])  # (1, H, W)
        cells = []
        for method in EXPLAIN_METHODS:
            png = ctx.scratch / f"example{i}-{method}.png"
            try:
                opts = task.explanation_options(method, samples=o.mc_samples)
                res = task.explain_example(ctx.work, ex["image"], ex["question"], method, opts=opts, out=png,
                                           device=o.device)  # fmt: skip
            except MumoError as exc:
                cells.append(f"<td>{_note(' '.join(str(exc).split()))}</td>")
                continue
            caption = "correct" if res["answer"] == ex["answer"] else f"wrong (true answer: {ex['answer']})"
            if res.get("grid"):
                s = summarize_map_scores(torch.tensor([res["map"]]), pool_to_grid(mask, tuple(res["grid"])))
                caption += (
                    f"; rank correlation {_fmt(s['rank_correlation'])}, pointing game "
                    f"{'hit' if s['pointing_game'] else 'miss'}, energy in mask {_fmt(s['energy_in_mask'])}"
                )
            cells.append(f"<td>{_figure(_file_uri(png), f'{method} map', caption)}</td>")
        label = f"{_e(ex['question'])}<br><small>{_e(ex['type'])}; true answer: {_e(ex['answer'])}</small>"
        rows.append(f"<tr><th>{label}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{_e({'gradcam': 'Grad-CAM', 'ucam': 'U-CAM'}.get(m, m))}</th>" for m in EXPLAIN_METHODS)
    return f"<table class='examples'><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def easy_vqa_examples(n: int) -> list[dict[str, Any]]:
    """``n`` easy-VQA test questions, each about another image: the first of each question type first, then the
    next ones in order; ``{"image": path, "question", "answer", "type"}``."""
    import easy_vqa

    from mumo.data.vqa.easy_vqa import question_type

    texts, answers, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    order: list[int] = []
    types, images = set(), set()
    for new_type_only in (True, False):
        for i, a in enumerate(answers):
            if len(order) == n:
                break
            if image_ids[i] in images or (new_type_only and question_type(a) in types):
                continue
            order.append(i)
            types.add(question_type(a))
            images.add(image_ids[i])
    return [
        {
            "image": Path(paths[image_ids[i]]),
            "question": texts[i],
            "answer": answers[i],
            "type": question_type(answers[i]),
        }
        for i in order
    ]


_PROBE_ROWS = (
    ("real image", "accuracy_real"), ("blank image", "accuracy_blank_image"),
    ("shuffled image", "accuracy_shuffled_image"), ("blank question", "accuracy_blank_question"),
    ("answers changed by another image", "answer_change_rate"),
)  # fmt: skip


def probe(ctx: _Context) -> list[Section]:
    """The Clever Hans probe: accuracy with the real, blanked and shuffled image and the question blanked."""
    task = ctx.task
    assert isinstance(task, Probes)
    ctx.log("probing for shortcuts (Clever Hans) ...")
    res = task.probe_run(ctx.work, split="test", max_images=ctx.options.images, seed=0, device=ctx.options.device)
    cols = {"all": res, **res.get("by_type", {})}
    rows = [[label, *(_fmt(c[key]) for c in cols.values())] for label, key in _PROBE_ROWS]
    rows.append(["looks at the image", *("yes" if c["looks_at_image"] else "NO" for c in cols.values())])
    body = (f"<p>{res['num_questions']} test questions about {res.get('num_images', ctx.options.images)} images "
            f"(seed {res.get('seed', 0)}).</p>")  # fmt: skip
    body += _table(["", *cols], rows) + f"<p class='verdict'>{_e(res['verdict'])}</p>"
    return [Section("probe", "Clever Hans probe", body)]


# -- HTML ---------------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { background: #f4f4f4; white-space: nowrap; }
table.examples td { border: none; } table.examples th { width: 10em; } table.examples img { max-width: 300px; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
figure { margin: .5em; display: inline-block; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; max-width: 520px; }
.grid { display: flex; flex-wrap: wrap; } .grid figure { max-width: 48%; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .4em .8em; }
.verdict { font-weight: 600; }
"""


def _page(run: Run, task: Task, sections: list[Section]) -> str:
    nav = " ".join(f"<a href='#{_e(s.id)}'>{_e(s.title)}</a>" for s in sections)
    body = "".join(f"<section id='{_e(s.id)}'><h2>{_e(s.title)}</h2>{s.body}</section>" for s in sections)
    title = f"mumo report: {run.path.name} ({task.name})"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{_e(title)}</h1><nav>{nav}</nav>{body}</body></html>\n"
    )


def figures_table(figures: dict[str, Any]) -> str:
    """An evaluation's figures (``Report.to_dict()``) as one table: nested keys dotted, short lists of numbers
    inline, lists of records as small tables of their own; the run's path and file lists left out."""
    rows, tables = [], []
    for key, value in _flatten(figures):
        if key in ("run", "plots") or key.endswith(".plots"):
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append(f"<h3>{_e(key)}</h3>" + _records(value))
        elif isinstance(value, list) and len(value) > 8:
            rows.append([key, f"{len(value)} values, not shown"])
        else:
            rows.append([key, _fmt(value)])
    shown = rows[:MAX_TABLE_ROWS]
    more = _note(f"{len(rows) - len(shown)} more figures not shown.") if len(rows) > len(shown) else ""
    return _table(["figure", "value"], shown) + more + "".join(tables[:5])


def _flatten(d: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _records(records: list[dict[str, Any]]) -> str:
    records = records[:20]
    cols = list(dict.fromkeys(k for r in records for k in r))
    return _table(cols, [[_fmt(r.get(c)) for c in cols] for r in records])


def _written_files(folder: Path) -> str:
    """The PNGs an evaluation wrote, inlined, and its first WAVs as players."""
    if not folder.is_dir():
        return ""
    pngs = sorted(folder.rglob("*.png"))
    out = "".join(_figure(_file_uri(p), p.stem, str(p.relative_to(folder))) for p in pngs)
    wavs = [p for p in sorted(folder.rglob("*.wav")) if p.stat().st_size <= MAX_SOUND_BYTES][:MAX_SOUNDS]
    for p in wavs:
        uri = "data:audio/wav;base64," + base64.b64encode(p.read_bytes()).decode("ascii")
        out += f"<figure><audio controls src='{uri}'></audio><figcaption>{_e(p.name)}</figcaption></figure>"
    return f"<div class='grid'>{out}</div>" if out else ""


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td class='num'>{_e(c)}</td>" if _numeric_text(c) else f"<td>{_e(c)}</td>" for c in r)
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(uri: str, alt: str, caption: str) -> str:
    return f"<figure><img src='{uri}' alt='{_e(alt)}'><figcaption>{_e(caption)}</figcaption></figure>"


def _note(text: str) -> str:
    return f"<p class='note'>{_e(text)}</p>"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: Any) -> str:
    """A figure as text: 4 decimals for a float (n/a for NaN), numbers of a short list joined."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"
    if isinstance(value, dict):  # a record inside a record (a generated question with its scores)
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ("; " if any(isinstance(v, dict) for v in value) else ", ").join(_fmt(v) for v in value)
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _numeric_text(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def _settings(kwargs: dict[str, Any], *shown_elsewhere: str) -> str:
    """An evaluation's options in words (``images 20, mc samples 3``), but the split, the device and the progress."""
    hidden = ("split", "progress", "device", *shown_elsewhere)
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in kwargs.items() if k not in hidden and v is not None)


def _figure_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _file_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _epoch_of(checkpoint: Any) -> int | None:
    """``epoch-0002`` -> 2 (the 1-based epoch a checkpoint holds), None when it names none."""
    if isinstance(checkpoint, str) and checkpoint.startswith("epoch-") and checkpoint[6:].isdigit():
        return int(checkpoint[6:])
    return None


def _mtime(path: Path) -> str:
    return f"{datetime.fromtimestamp(path.stat().st_mtime):%Y-%m-%d %H:%M}" if path.exists() else "n/a"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mumo")
    except PackageNotFoundError:
        return "(version unknown)"


__all__ = ["REPORT_FILE", "ReportOptions", "Section", "render_report", "shadow_run", "write_report"]
