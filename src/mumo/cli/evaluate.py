"""``mumo evaluate``: every figure of a trained run (the task's ``evaluate``), printed or as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json
from mumo.cli._options import MCScope


@friendly_errors
def evaluate_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    split: Annotated[str, typer.Option(help="val or test")] = "test",
    images: Annotated[
        int | None, typer.Option(help="evaluate on the split's first N images only (a quick check); default all")
    ] = None,
    mc_samples: Annotated[
        int | None, typer.Option(help="T MC-dropout passes; adds calibration, misclassification, OOD figures")
    ] = None,
    mc_scope: MCScope = "all",
    ood: Annotated[
        str | None,
        typer.Option(
            help="OOD set: sort-of-clevr, shapes-ood, noise, photos, textures, drawings, easy-vqa; scenes-shift "
            "(scenes runs: the held-out colour-shape pairs and places, its accuracy reported too)"
        ),
    ] = None,
    pixel_noise: Annotated[
        float | None,
        typer.Option(help="evaluate under a near shift: N(0, STD²) noise on the [0, 1] pixels of every image"),
    ] = None,
    feature_noise: Annotated[
        float | None,
        typer.Option(help="evaluate under a near shift: N(0, STD²) noise on the image features (MCAN study protocol)"),
    ] = None,
    corruption: Annotated[
        str | None,
        typer.Option(
            help="evaluate under an ImageNet-C corruption of every image: gaussian_noise, shot_noise, impulse_noise, "
            "gaussian_blur, brightness, contrast, jpeg_compression, pixelate"
        ),
    ] = None,
    severity: Annotated[int | None, typer.Option(help="the --corruption's severity, 1-5 (default 3)")] = None,
    abstain: Annotated[
        float | None,
        typer.Option(help="also report coverage, risk and PAvPU when abstaining above this predictive entropy"),
    ] = None,
    density_images: Annotated[
        int,
        typer.Option(
            help="fit the feature-density OOD score (class Gaussians over the fused features) on this many "
            "training images; 0 = off"
        ),
    ] = 2000,
    question_bank: Annotated[
        int,
        typer.Option(
            help="with --mc-samples or --ensemble: ask this many training questions about every image and score "
            "the image by their mean mutual information (image_mutual_information); 0 = off"
        ),
    ] = 8,
    temperature: Annotated[
        str,
        typer.Option(
            help="divide the answer logits by T: auto (the run's temperature.json from fit-temperature, else 1), "
            "none (1), or a number"
        ),
    ] = "auto",
    ensemble: Annotated[
        list[Path] | None,
        typer.Option(
            help="another run of RUN's recipe (trained with train.member=k) answering with RUN as a deep "
            "ensemble; repeat for each member"
        ),
    ] = None,
    deterministic: Annotated[
        bool,
        typer.Option(
            "--deterministic",
            help="question-generation runs: dropout off at inference (MC-SMN), the T passes then agree",
        ),
    ] = False,
    scorer: Annotated[
        Path | None,
        typer.Option(
            help="lip-sync generator runs (required): the lip-sync expert run (mumo train sync) that measures "
            "LSE-D / LSE-C; not the expert the generator trained against"
        ),
    ] = None,
    clips: Annotated[
        int | None,
        typer.Option(help="lip-sync and lip-to-speech runs: evaluate the split's first N clips only; default all"),
    ] = None,
    sheet: Annotated[
        Path | None,
        typer.Option(help="lip-sync generator runs: write a contact sheet (PNG) of real, masked and generated faces"),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="lip-sync and lip-to-speech runs: the talking-face data set (default: the run's data.root)"),
    ] = None,
    align: Annotated[
        Path | None,
        typer.Option(
            help="lip-to-speech runs: a lip-sync expert run (mumo train sync) whose offset estimate aligns each "
            "recording to its video before scoring"
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    results_json: Annotated[
        Path | None,
        typer.Option(help='vqa-v2 runs: write the official results file [{"question_id", "answer"}] (argmax)'),
    ] = None,
) -> None:
    """Accuracy of a trained VQA run, overall and per question type; with --mc-samples, --ood or --ensemble also
    calibration (ECE, NLL, Brier), misclassification and OOD detection, and plots in RUN/plots/.
    With --ensemble the members' mean answer is scored and their disagreement is the epistemic uncertainty.
    With --pixel-noise, --feature-noise or --corruption every figure is measured under that shift (plots in
    RUN/plots/<shift>/). With --results-json (vqa-v2 runs only) also the official VQA results file of the
    evaluated split. A question-generation run: BLEU-1..4, METEOR, ROUGE-L and CIDEr over --mc-samples dropout
    passes (default 5), and on mumo scenes validity, answerability, diversity and the uncertainty's AUROC for bad
    questions (docs/vqg.md). A lip-sync generator run (with --scorer SYNC_RUN): LSE-D, LSE-C and the AV offset of
    the generated clips with their own and with another speaker's audio, the real clips' beside them, PSNR and SSIM
    against the real faces, and with --mc-samples (default 5) the dropout uncertainty checked against the errors.
    A lip-to-speech run: STOI, ESTOI and PESQ (narrow-band) of the speech made from each held-out clip's faces
    against its recording (with --align SYNC_RUN the recording is first aligned to the video), beside the
    training-average mel's floor and the vocoder's ceiling; mel L1, the attention's diagonality, and the MC-dropout
    spread checked against the per-step error (docs/lip2speech.md)."""
    from mumo.errors import ConfigError
    from mumo.tasks import task_of_run

    task = task_of_run(run)
    extra = {}
    if deterministic:
        if task.name != "vqg":
            raise ConfigError("--deterministic is for question-generation runs (MC-SMN: dropout off at inference)")
        extra["mc"] = False
    # options of the audio-visual generators: flag -> (option name, value, the tasks that take it)
    av_only = {
        "--scorer": ("scorer", scorer, ("lipsync",)),
        "--sheet": ("sheet", sheet, ("lipsync",)),
        "--clips": ("clips", clips, ("lipsync", "lip2speech")),
        "--data": ("data_root", data, ("lipsync", "lip2speech")),
        "--align": ("align", align, ("lip2speech",)),
    }
    for flag, (key, value, tasks) in av_only.items():
        if task.name in tasks:
            extra[key] = value
        elif value is not None:
            what = " or ".join({"lipsync": "lip-sync generator", "lip2speech": "lip-to-speech"}[t] for t in tasks)
            raise ConfigError(f"{flag} is for {what} runs; a {task.name!r} run does not take it")
    options = task.evaluation_options(
        split=split, images=images, mc_samples=mc_samples, mc_scope=mc_scope, ood=ood, pixel_noise=pixel_noise,
        feature_noise=feature_noise, corruption=corruption, severity=severity, abstain=abstain,
        density_images=density_images, question_bank=question_bank, temperature=temperature,
        ensemble=ensemble or (), device=device, results_json=results_json, **extra,
    )  # fmt: skip
    report = task.evaluate(run, options)
    if json_out:
        typer.echo(strict_json(report.to_dict()))
        return
    for line in report.lines():
        typer.echo(line)
