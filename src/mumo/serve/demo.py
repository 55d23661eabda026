"""The browser demo (``mumo demo RUN [RUN ...]``): one Gradio tab per trained run, by its task.

Each tab answers through the calls the CLI makes: :func:`mumo.serve.predict.load` for VQA and question generation,
the task registry's protocols for the rest (:class:`~mumo.tasks.Explains` for VQA's overlays,
:class:`~mumo.tasks.ScoresSync`, :class:`~mumo.tasks.DubsVideo`, :class:`~mumo.tasks.SpeaksVideo`); no task package
is imported here. :func:`build_demo` builds the page without serving it (tests call its endpoints through
``gradio_client``), :func:`launch` serves it.

Offline: nothing is fetched from the internet. The theme uses system fonts only (no web-font stylesheet), Gradio's
analytics are off (``analytics_enabled=False`` here; ``mumo demo`` also sets ``GRADIO_ANALYTICS_ENABLED=False`` before
Gradio is imported), there is no share link, server-side rendering, PWA or MCP server, and the example images are
written at build time from easy-VQA's package files or the run's own test split.

A user's mistake (no image, an empty question, a file that is not an image or a video) comes back as the one-line
message of the :class:`~mumo.errors.MumoError` it raises, in a ``gr.Error`` box; the uploaded file is named as the
user named it, not by its temporary path. Endpoints take their inputs unprocessed (``preprocess=False``), so that
mumo, not Gradio, reads every upload.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import socket
import tempfile
import warnings
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mumo.errors import MumoError

try:
    import gradio as gr
except ImportError:  # pragma: no cover - gradio is the [demo] extra
    raise MumoError("the demo needs Gradio: pip install 'mumo[demo]'") from None

__all__ = ["build_demo", "check_port", "launch"]

log = logging.getLogger(__name__)

THEME = gr.themes.Default(font=("system-ui", "sans-serif"), font_mono=("ui-monospace", "monospace"))
MAX_T = 50  # the largest T the sliders offer
EXAMPLES = 3  # example images per tab
# every endpoint: its inputs as uploaded (mumo reads the files, not Gradio) and one queue slot for them all (one
# request at a time: the models share this process's cores)
EVENT: dict[str, Any] = {"preprocess": False, "concurrency_id": "mumo", "concurrency_limit": 1}


# -- shared ------------------------------------------------------------------------------------------------------------


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An endpoint whose MumoErrors reach the page as their message (a ``gr.Error``), and whose warnings from mumo
    as ``gr.Warning``; anything else as one line naming the error (its traceback goes to the server's log)."""

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        try:  # (catch_warnings is process-wide: safe as the endpoints share one queue slot, EVENT)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out = fn(*args)
        except gr.Error:
            raise
        except MumoError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:
            log.exception("demo endpoint %s failed", fn.__name__)
            raise gr.Error(f"internal error ({type(exc).__name__}: {exc}); the traceback is in the server's log",
                           print_exception=False) from None  # fmt: skip
        said = set()
        for w in caught:  # mumo's own (a length mismatch, ...); a run without an OOD check is said in its tab
            if w.category.__module__.startswith("mumo") and w.category.__name__ != "NoOODCheckWarning":
                if str(w.message) not in said:
                    gr.Warning(str(w.message))
                said.add(str(w.message))
        return out

    return wrapper


def _upload(payload: Any, what: str, *, required: bool = True) -> tuple[Path | None, str]:
    """The path of an unprocessed upload (Gradio's FileData as a dict) and the name its user gave it."""
    if isinstance(payload, dict) and payload.get("path"):
        return Path(payload["path"]), payload.get("orig_name") or Path(payload["path"]).name
    if isinstance(payload, str) and payload:  # a path, as a Python caller may pass
        return Path(payload), Path(payload).name
    if required:
        raise MumoError(f"no {what}: upload one" + (" or pick an example" if what == "image" else ""))
    return None, ""


def _named(message: str, uploads: Sequence[tuple[Path | None, str]]) -> str:
    """``message`` with each upload's temporary path replaced by the name its user gave it."""
    for path, name in uploads:
        if path is not None:
            message = message.replace(str(path), name)
    return message


def _as_user(fn: Callable[[], Any], *uploads: tuple[Path | None, str]) -> Any:
    try:
        return fn()
    except MumoError as exc:
        raise MumoError(_named(str(exc), uploads)) from None


def _samples(value: Any, name: str = "T", minimum: int = 1) -> int:
    try:
        t = int(value)
    except (TypeError, ValueError):
        raise MumoError(f"{name} must be a whole number, not {value!r}") from None
    if t != value or not minimum <= t <= MAX_T:
        raise MumoError(f"{name} must be a whole number from {minimum} to {MAX_T}, not {value!r}")
    return t


def _request_dir(workdir: Path) -> Path:
    """A fresh folder for one request's files (served from there by Gradio; removed with the demo)."""
    return Path(tempfile.mkdtemp(dir=workdir))


# -- examples ----------------------------------------------------------------------------------------------------------


def _easy_vqa_examples(dest: Path, n: int = EXAMPLES) -> list[tuple[Path, str]]:
    """``n`` easy-VQA test images (shipped with the ``easy-vqa`` package) copied to ``dest``, each with a question
    of another kind about it: its shape, its colour, yes or no."""
    import easy_vqa

    texts, answers, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    kinds = (("circle", "rectangle", "triangle"), None, ("yes", "no"))  # None: any other answer, a colour
    out: list[tuple[Path, str]] = []
    for image_id in sorted(paths)[:n]:
        asked = [(t, a) for t, a, i in zip(texts, answers, image_ids, strict=True) if i == image_id]
        kind = kinds[len(out) % len(kinds)]
        of_kind = [t for t, a in asked if (a in kind if kind else all(a not in k for k in kinds if k))]
        path = dest / f"easy-vqa-test-{image_id}.png"
        shutil.copyfile(paths[image_id], path)
        out.append((path, (of_kind or [asked[0][0]])[0]))
    return out


def _data_root(name: str, root: str) -> Path | None:
    """The directory a run's generated data set is in: its ``data.root``, else the cached default set of its name
    (where training generated it; the demo generates nothing)."""
    from mumo.data._output import cache_dir
    from mumo.data.scenes.dataset import FORMAT_VERSION

    if root:
        return Path(root)
    cached = {"scenes": f"scenes-v{FORMAT_VERSION}-seed0", "sort-of-clevr": "sort-of-clevr-v1-seed0"}  # as training
    return cache_dir() / cached[name] if name in cached else None


def _split_examples(name: str, root: str, dest: Path, n: int = EXAMPLES) -> list[tuple[Path, str]]:
    """The first ``n`` images of a generated set's test split (``test.jsonl``: Sort-of-CLEVR, mumo scenes), copied
    to ``dest``, each with its first question; none when the set is not there."""
    folder = _data_root(name, root)
    lines_file = folder / "test.jsonl" if folder is not None else None
    if lines_file is None or not lines_file.is_file():
        return []
    root = str(folder)
    out: list[tuple[Path, str]] = []
    with open(lines_file, encoding="utf-8") as f:
        for line in f:
            if len(out) == n:
                break
            rec = json.loads(line)
            src = Path(root) / rec["image"]
            if src.is_file():
                path = dest / f"test-{len(out)}{src.suffix}"
                shutil.copyfile(src, path)
                questions = rec.get("questions") or [{}]
                out.append((path, questions[0].get("question", "")))
    return out


def _vqa_examples(data_name: str, root: str, dest: Path) -> tuple[list[tuple[Path, str]], str]:
    """Example image-question pairs for a run on ``data_name``, and where they come from."""
    if data_name == "easy-vqa":
        return _easy_vqa_examples(dest), "easy-VQA's test split"
    own = _split_examples(data_name, root, dest)
    if own:
        return own, "this run's test split"
    return _easy_vqa_examples(dest), "easy-VQA's test split, not this run's data: its OOD check may refuse them"


# -- VQA ---------------------------------------------------------------------------------------------------------------

ABSTAIN_CHOICES = [
    ("never (only the OOD check)", "off"),
    ("total uncertainty above the threshold", "predictive_entropy"),
    ("epistemic uncertainty above the threshold", "mutual_information"),
    ("aleatoric uncertainty above the threshold", "expected_entropy"),
]
OVERLAYS = (("attention", "Attention"), ("gradcam", "Grad-CAM"), ("ucam", "U-CAM (predictive)"))


def _decision_markdown(pred: Any) -> str:
    if pred.abstained:
        best = f"Best guess: **{pred.best_guess}** (p = {pred.top_k[0].probability:.3f})"
        return f"## don't know\n\n{pred.abstain_reason}.\n\n{best}"
    return f"## {pred.answer}\n\np = {pred.probability:.3f}"


def _uncertainty_markdown(pred: Any) -> str:
    u = pred.uncertainty
    how = (f"MC dropout, T = {u.mc_samples} passes ({u.mc_dropout_modules} dropout modules sampled)"
           if u.mc_samples else "one deterministic pass: no epistemic part")  # fmt: skip
    lines = [
        "| uncertainty | nats |", "|---|---|",
        f"| total (predictive entropy) | {u.total:.4f} |", f"| aleatoric (expected entropy) | {u.aleatoric:.4f} |",
        f"| epistemic (mutual information) | {u.epistemic:.4f} |", f"| variation ratio | {u.variation_ratio:.3f} |",
        "", how + (f", temperature {u.temperature:g}" if u.temperature != 1 else "") + ".",
    ]  # fmt: skip
    o = pred.out_of_distribution
    if o is not None:
        verdict = "**out of distribution**" if o["out_of_distribution"] else "in distribution"
        lines.append(
            f"\nImage: {verdict} (distance to its nearest training images {o['score']:.4f}, threshold "
            f"{o['threshold']:.4f}; above {o['quantile']:.1%} of validation images)."
        )
    else:
        lines.append("\nImage: this run has no out-of-distribution check (`mumo fit-density RUN` fits one).")
    if u.feature_density is not None:
        lines.append(
            f"\nFeature density: {u.feature_density:.1f} nats (−log density), above "
            f"{u.feature_density_quantile:.1%} of validation questions."
        )
    return "\n".join(lines)


def _vqa_tab(run: Path, api: str, device: str, workdir: Path) -> None:
    from mumo.errors import NoOODCheckWarning
    from mumo.serve.predict import load
    from mumo.tasks import Explains, require

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoOODCheckWarning)
        predictor = load(run, device=device)
    explainer = require(run, Explains, "mumo demo", "a VQA model")
    examples, source = _vqa_examples(predictor.cfg.data.name, predictor.cfg.data.root, workdir)
    notes = "".join(f"\n\nNote: {w.message}" for w in caught if issubclass(w.category, NoOODCheckWarning))
    gr.Markdown(
        f"Visual question answering: **{run}** ({predictor.cfg.data.name}, {len(predictor.answers)} answers). "
        f"Ask a question about an image: the top answers with their probabilities, the uncertainty split into its "
        f"aleatoric and epistemic parts (MC dropout, T passes), whether the model abstains and why, and where it "
        f"looked (attention, Grad-CAM, U-CAM).{notes}"
    )
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="Image", type="filepath", sources=["upload", "clipboard"], height=280,
                             elem_id=f"{api}-image")  # fmt: skip
            question = gr.Textbox(label="Question", placeholder="what shape is in the image?", max_lines=1,
                                  elem_id=f"{api}-question")  # fmt: skip
            t = gr.Slider(2, MAX_T, value=20, step=1, label="T: MC-dropout passes")
            with gr.Row():
                abstain_on = gr.Dropdown(ABSTAIN_CHOICES, value="off", label="Abstain (say don't know) when")
                threshold = gr.Number(value=1.0, minimum=0, label="threshold (nats)")
            ood = gr.Checkbox(value=True, label="refuse images unlike the training images (the OOD check)")
            button = gr.Button("Answer", variant="primary", elem_id=f"{api}-button")
            gr.Examples([[str(p), q] for p, q in examples], [image, question], label=f"Examples ({source})",
                        cache_examples=False)  # fmt: skip
        with gr.Column():
            decision = gr.Markdown(elem_classes="mumo-decision", elem_id=f"{api}-decision")
            answers = gr.Label(label="Top answers", num_top_classes=5, show_heading=False)
            uncertainty = gr.Markdown()
    with gr.Row():
        overlays = []
        for method, label in OVERLAYS:
            with gr.Column():
                gr.Markdown(f"**{label}**")
                overlays.append(gr.Image(label=label, show_label=False, type="pil", format="png", interactive=False,
                                         elem_id=f"{api}-{method}"))  # fmt: skip
    with gr.Accordion("The prediction as JSON", open=False):
        raw = gr.JSON(label="prediction")

    @_user_errors
    def answer(image: Any, question: str, t: Any, abstain_on: str, threshold: Any, ood: bool) -> tuple:
        upload = _upload(image, "image")
        off = abstain_on in (None, "", "off")
        if not off and threshold is None:
            raise MumoError("give the abstention threshold (nats)")
        pred = _as_user(
            lambda: predictor.predict(
                upload[0], question or "", top_k=5, mc_samples=_samples(t), ood_check=bool(ood),
                abstain=None if off else float(threshold), abstain_on="predictive_entropy" if off else abstain_on,
            ),
            upload,
        )  # fmt: skip
        label = {a.answer: a.probability for a in pred.top_k}
        return _decision_markdown(pred), label, _uncertainty_markdown(pred), pred.to_dict()

    @_user_errors
    def explain(image: Any, question: str, t: Any) -> tuple:
        from PIL import Image

        from mumo.data.images import load_image
        from mumo.data.text import check_question

        upload = _upload(image, "image")
        samples = _samples(t)
        _as_user(lambda: (load_image(upload[0]), check_question(question or "")), upload)  # bad input: one message
        out_dir = _request_dir(workdir)
        maps = []
        for method, label in OVERLAYS:
            png = out_dir / f"{method}.png"
            try:
                opts = explainer.explanation_options(method, samples=samples)
                _as_user(lambda m=method, o=opts, p=png: explainer.explain_example(
                    run, upload[0], question or "", m, opts=o, out=p, predictor=predictor), upload)  # fmt: skip
            except MumoError as exc:  # one method this model does not offer: the others still come
                gr.Warning(f"{label}: {exc}")
                maps.append(None)
                continue
            with Image.open(png) as im:
                maps.append(im.convert("RGB"))
        shutil.rmtree(out_dir, ignore_errors=True)
        return tuple(maps)

    inputs, outputs = [image, question, t, abstain_on, threshold, ood], [decision, answers, uncertainty, raw]
    button.click(answer, inputs, outputs, api_name=api, **EVENT).success(
        explain, [image, question, t], overlays, api_name=f"{api}_explain", **EVENT
    )
    question.submit(answer, inputs, outputs, api_visibility="private", **EVENT).success(
        explain, [image, question, t], overlays, api_visibility="private", **EVENT
    )


# -- lip sync (the expert) ---------------------------------------------------------------------------------------------


def _sync_tab(run: Path, api: str, device: str, workdir: Path) -> None:
    from mumo.tasks import ScoresSync, require

    task = require(run, ScoresSync, "mumo demo", "a lip-sync expert")
    gr.Markdown(
        f"Lip sync: **{run}**. Upload a talking-face video (and, optionally, another audio track to score against it): "
        "the audio-video offset, LSE-D (lower: closer), LSE-C (higher: more confident) and the probability that lips "
        "and voice belong together, with its spread over T MC-dropout passes. Faces are detected in every frame."
    )
    with gr.Row():
        with gr.Column():
            video = gr.Video(label="Video (a face, speaking)", sources=["upload"])
            audio = gr.Audio(label="Audio (optional: scored instead of the video's own track)", type="filepath",
                             sources=["upload"])  # fmt: skip
            t = gr.Slider(2, MAX_T, value=20, step=1, label="T: MC-dropout passes")
            button = gr.Button("Score", variant="primary")
        with gr.Column():
            result = gr.Markdown()
            with gr.Accordion("The scores as JSON", open=False):
                raw = gr.JSON(label="scores")

    @_user_errors
    def score(video: Any, audio: Any, t: Any) -> tuple[str, dict]:
        v, a = _upload(video, "video"), _upload(audio, "audio", required=False)
        res = _as_user(lambda: task.sync_video(run, v[0], a[0], mc_samples=_samples(t), seed=0, device=device), v, a)
        lines = [
            f"**Offset** {res['offset_frames']:+d} frames ({res['offset_frames'] * 40:+d} ms; positive = audio lags)",
            f"**LSE-D** {res['lse_d']:.4f}  **LSE-C** {res['lse_c']:.4f}  ({res['windows']} windows)",
        ]
        if "sync_probability_std" in res:
            lines.append(f"**Sync probability** {res['sync_probability_mc']:.3f} ± {res['sync_probability_std']:.3f} "
                         f"(MC dropout, T = {res['mc_samples']})")  # fmt: skip
        else:
            lines.append(f"**Sync probability** {res['sync_probability']:.3f} (this expert has no dropout: no spread)")
        if res.get("skipped_frames"):
            lines.append(f"{res['skipped_frames']} frames had no usable face and were filled from their neighbours")
        res["video"] = v[1]
        return "\n\n".join(lines), res

    button.click(score, [video, audio, t], [result, raw], api_name=api, **EVENT)


# -- question generation -----------------------------------------------------------------------------------------------


def _vqg_tab(run: Path, api: str, device: str, workdir: Path) -> None:
    from mumo.serve.predict import load

    predictor = load(run, device=device)
    examples = _split_examples(predictor.cfg.data.name, predictor.cfg.data.root, workdir)
    gr.Markdown(
        f"Question generation: **{run}** ({predictor.cfg.data.name}; experts {', '.join(predictor.cfg.model.experts)})."
        " An image, and optionally its place, a caption and tags, becomes T questions, one per dropout pass, each "
        "with its uncertainty: the mean word entropy and its epistemic part (mutual information over T passes). "
        "Cues left empty are predicted by the model (a caption cannot be: its expert is then dropped)."
    )
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="Image", type="filepath", sources=["upload", "clipboard"], height=280)
            place = gr.Dropdown([("predicted", ""), *[(p, p) for p in predictor.places]], value="", label="Place")
            caption = gr.Textbox(label="Caption (optional)", max_lines=2)
            tags = gr.Textbox(label="Tags (optional, comma-separated)", max_lines=1)
            t = gr.Slider(1, MAX_T, value=5, step=1, label="T: dropout passes (one question each)")
            button = gr.Button("Write questions", variant="primary")
            if examples:
                gr.Examples([[str(p)] for p, _ in examples], [image], label="Examples (this run's test split)",
                            cache_examples=False)  # fmt: skip
        with gr.Column():
            table = gr.Dataframe(headers=["question", "entropy", "epistemic", "valid"], label="Questions",
                                 interactive=False, wrap=True)  # fmt: skip
            cues = gr.Markdown()
            with gr.Accordion("The questions as JSON", open=False):
                raw = gr.JSON(label="questions")

    @_user_errors
    def generate(image: Any, place: str, caption: str, tags: str, t: Any) -> tuple:
        upload = _upload(image, "image")
        tag_list = [x.strip() for x in (tags or "").split(",") if x.strip()] or None
        res = _as_user(lambda: predictor.generate(upload[0], caption=caption or None, tags=tag_list,
                                                  place=place or None, samples=_samples(t)), upload)  # fmt: skip
        rows = [[q["question"], round(q["entropy"], 4), round(q["epistemic"], 4), q.get("valid", "")]
                for q in res["questions"]]  # fmt: skip
        text = "Cues: " + "; ".join(f"{k} {v}" for k, v in res["cues"].items())
        if res["unknown_words"]:
            text += "\n\nUnknown words (read as `<unk>`): " + ", ".join(res["unknown_words"])
        text += f"\n\n{res['distinct']} distinct of {res['samples']} ({res['inference']}); {res['seconds']:.2f} s"
        return rows, text, res

    button.click(generate, [image, place, caption, tags, t], [table, cues, raw], api_name=api, **EVENT)


# -- lip-sync generation -----------------------------------------------------------------------------------------------


def _lipsync_tab(run: Path, api: str, device: str, workdir: Path) -> None:
    from mumo.tasks import DubsVideo, require

    task = require(run, DubsVideo, "mumo demo", "a lip-sync generator")
    gr.Markdown(
        f"Lip-sync generation: **{run}**. A face video or still image speaks new audio (or text, spoken by espeak-ng):"
        " the mouth of every frame with a face is redrawn. The result lasts as long as the speech."
    )
    with gr.Row():
        with gr.Column():
            face = gr.File(label="Face: a video or a still image", file_types=["video", "image"])
            audio = gr.Audio(label="Speech", type="filepath", sources=["upload"])
            text = gr.Textbox(label="…or text to speak (instead of the speech file)", max_lines=3)
            voice = gr.Textbox(label="espeak-ng voice (for text)", value="en", max_lines=1)
            button = gr.Button("Dub", variant="primary")
        with gr.Column():
            out = gr.Video(label="Dubbed video", interactive=False)
            result = gr.Markdown()

    @_user_errors
    def dub(face: Any, audio: Any, text: str, voice: str) -> tuple[str, str]:
        f, a = _upload(face, "face video or image"), _upload(audio, "speech", required=False)
        text = (text or "").strip() or None
        if (a[0] is None) == (text is None):
            raise MumoError("give the speech as exactly one of a speech file or a text to speak")
        dest = _request_dir(workdir) / "dubbed.mp4"
        res = _as_user(lambda: task.dub_video(run, f[0], dest, audio=a[0], text=text, voice=voice or "en",
                                              device=device, progress=False), f, a)  # fmt: skip
        summary = (f"{res['frames']} frames ({res['seconds']:.2f} s at {res['fps']:g} fps) from the {res['source']} "
                   f"{f[1]} ({res['source_frames']} frames, {res['length']}); {res['face_frames']} frames dubbed, "
                   f"{res['passed_through']} without a face passed through")  # fmt: skip
        return str(dest), summary

    button.click(dub, [face, audio, text, voice], [out, result], api_name=api, **EVENT)


# -- lip to speech -----------------------------------------------------------------------------------------------------


def _lip2speech_tab(run: Path, api: str, device: str, workdir: Path) -> None:
    from mumo.tasks import SpeaksVideo, require

    task = require(run, SpeaksVideo, "mumo demo", "a lip-to-speech model")
    gr.Markdown(
        f"Lip to speech: **{run}**. A silent video of the trained speaker's face becomes their speech (and the video "
        "with it as its sound). With T ≥ 2 MC-dropout decodes, the speech's spread per second says where the model is "
        "unsure."
    )
    with gr.Row():
        with gr.Column():
            video = gr.Video(label="Face video (its sound is not used)", sources=["upload"])
            t = gr.Slider(0, MAX_T, value=0, step=1, label="T: MC-dropout decodes for the spread (0 = off)")
            button = gr.Button("Speak", variant="primary")
        with gr.Column():
            speech = gr.Audio(label="Speech", type="filepath", interactive=False)
            muxed = gr.Video(label="Video with the speech", interactive=False)
            result = gr.Markdown()

    @_user_errors
    def speak(video: Any, t: Any) -> tuple[str, str, str]:
        v = _upload(video, "video")
        samples = _samples(t, minimum=0)
        dest = _request_dir(workdir)
        wav, mp4 = dest / "speech.wav", dest / "speech.mp4"
        res = _as_user(lambda: task.speak_video(run, v[0], wav, mux=mp4, samples=samples, seed=0, device=device,
                                                progress=False), v)  # fmt: skip
        lines = [
            f"{res['seconds']:.2f} s of speech from {res['frames']} frames ({res['windows']} windows, "
            f"{res['frames_without_face']} frames without a face); {res['timing']['total_seconds']:.2f} s"
        ]
        if "uncertainty" in res:
            u = res["uncertainty"]
            lines.append(f"Spread over {u['mc_samples']} dropout decodes: mean {u['mean_spread']:.3f}; per second "
                         + ", ".join(f"{x:.2f}" for x in u["spread_per_second"]))  # fmt: skip
        return str(wav), str(mp4) if res.get("muxed") else None, "\n\n".join(lines)

    button.click(speak, [video, t], [speech, muxed, result], api_name=api, **EVENT)


# -- the page ----------------------------------------------------------------------------------------------------------

TABS: dict[str, tuple[str, Callable[[Path, str, str, Path], None]]] = {
    # task name -> (tab title, builder)
    "vqa": ("Visual question answering", _vqa_tab),
    "sync": ("Lip sync", _sync_tab),
    "vqg": ("Question generation", _vqg_tab),
    "lipsync": ("Lip-sync generation", _lipsync_tab),
    "lip2speech": ("Lip to speech", _lip2speech_tab),
}
API_NAMES = {"vqa": "vqa", "sync": "sync", "vqg": "generate_questions", "lipsync": "lipsync",
             "lip2speech": "lip2speech"}  # fmt: skip
CSS = ".mumo-decision h2 { margin: 0.2em 0; }"


def build_demo(runs: Sequence[str | Path], *, device: str = "auto") -> gr.Blocks:
    """The demo page of ``runs``: one tab per run, by its task (CheckpointError for a path that is not a run,
    MumoError for a task the demo has no tab for). Models are loaded here, once; nothing is served.

    Endpoints (``gradio_client``'s ``api_name``; the second run of a task gets ``_2``, and so on): ``/vqa`` and
    ``/vqa_explain``, ``/sync``, ``/generate_questions``, ``/lipsync``, ``/lip2speech``.
    """
    from mumo.tasks import task_of_run

    if not runs:
        raise MumoError("give at least one run directory")
    tasks = [(Path(r), task_of_run(r).name) for r in runs]  # every run checked before any model loads
    for run, name in tasks:
        if name not in TABS:
            raise MumoError(f"{run} is a {name!r} run; the demo has tabs for {', '.join(TABS)}")
    workdir = Path(tempfile.mkdtemp(prefix="mumo-demo-"))  # examples and results: removed with the demo
    seen: dict[str, int] = {}
    try:
        with gr.Blocks(title="mumo demo", analytics_enabled=False) as demo:
            gr.Markdown(
                "# mumo demo\nTrained runs answering with their uncertainty; everything runs on this machine. "
                "Each tab is one run."
            )
            with gr.Tabs():
                for run, name in tasks:
                    seen[name] = seen.get(name, 0) + 1
                    api = API_NAMES[name] + (f"_{seen[name]}" if seen[name] > 1 else "")
                    title, build = TABS[name]
                    with gr.Tab(f"{title}: {run.name}"):
                        build(run, api, device, Path(tempfile.mkdtemp(dir=workdir)))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    weakref.finalize(demo, shutil.rmtree, workdir, ignore_errors=True)
    return demo


def check_port(host: str, port: int) -> None:
    """MumoError when ``port`` is not a port number or is already in use on ``host``."""
    if not 1 <= port <= 65535:
        raise MumoError(f"--port must be from 1 to 65535, not {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no conflict
        try:
            s.bind((host, port))
        except OSError as exc:
            raise MumoError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; pick another --port") from None


def launch(
    demo: gr.Blocks, *, host: str = "127.0.0.1", port: int = 7860, prevent_thread_lock: bool = False,
    quiet: bool = False,
) -> str:  # fmt: skip
    """Serve ``demo`` on ``host:port`` with the queue on (one request at a time per endpoint) and return its URL;
    blocks until Ctrl-C unless ``prevent_thread_lock`` (then ``demo.close()`` stops it)."""
    check_port(host, port)
    demo.queue(default_concurrency_limit=1)
    try:
        _, url, _ = demo.launch(
            server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=prevent_thread_lock,
            quiet=quiet, theme=THEME, css=CSS, ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False,
            footer_links=["api", "settings"], show_error=False,
        )  # fmt: skip
    except OSError as exc:
        raise MumoError(f"cannot serve on {host}:{port}: {exc}") from None
    return url
