"""The lip-sync generator's evaluation on tiny real files: a generator trained against one tiny expert, scored by a
second one trained with another seed -> LSE in sync and dubbed, PSNR / SSIM, the dropout uncertainty against the
errors, the contact sheet; one-line errors for bad input through ``mumo evaluate``."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from mumo.data.av.clips import LipSyncClip, load_clips
from mumo.errors import MumoError
from tests.cli._invoke import assert_clear_error, run_cli
from tests.tasks.lipsync.test_lipsync_train import TINY, TINY_EXPERT, expert_run  # noqa: F401 (a fixture)
from tests.tasks.sync.test_sync import make_layout

SETTING_KEYS = {"clips", "lse_d", "lse_c", "abs_offset", "within_one_frame"}


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    """8 speakers of one clip each: 2 held-out test speakers, so that each test clip is dubbed with the other's
    audio (the training tests' layout has one test speaker). ``expert_run`` trains on it too."""
    return make_layout(tmp_path_factory.mktemp("faces"), speakers=8, clips=1)


@pytest.fixture(scope="module")
def scorer_run(layout, tmp_path_factory) -> Path:
    """A second tiny expert, trained with another seed: the independent scorer."""
    from mumo.tasks.sync.config import load_sync_config
    from mumo.tasks.sync.task import train_sync

    out = tmp_path_factory.mktemp("runs") / "scorer"
    train_sync(load_sync_config("sync-cpu", [f"data.root={layout}", *TINY_EXPERT, "train.seed=1"]), out, progress=False)
    return out


@pytest.fixture(scope="module")
def generator_run(layout, expert_run, tmp_path_factory) -> Path:  # noqa: F811 (the imported fixture)
    """A tiny generator trained for one epoch against ``expert_run``, the sync loss on from the start."""
    from mumo.tasks.lipsync.config import load_lipsync_config
    from mumo.tasks.lipsync.train import train_lipsync

    out = tmp_path_factory.mktemp("runs") / "generator"
    overrides = [*TINY, f"data.root={layout}", f"objective.expert={expert_run}", "objective.sync_from_start=true"]
    train_lipsync(load_lipsync_config("wav2lip-cpu", overrides), out, progress=False)
    return out


@pytest.fixture(scope="module")
def sheet_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("eval") / "sheets" / "lipsync.png"


@pytest.fixture(scope="module")
def report(generator_run, scorer_run, sheet_path) -> dict:
    """The evaluation of the test split with 3 dropout samples and a contact sheet, through the task registry."""
    from mumo.tasks import get_task

    task = get_task("lipsync")
    options = task.evaluation_options(scorer=scorer_run, mc_samples=3, sheet=sheet_path, device="cpu", progress=False)
    result = task.evaluate(generator_run, options)
    assert result.lines() and all(isinstance(line, str) for line in result.lines())
    return result.to_dict()


def _test_clips(layout: Path) -> list[LipSyncClip]:
    return load_clips(layout, "test", progress=False, keep_faces=True)


# -- the figures ---------------------------------------------------------------------------------------------------


def test_the_report_holds_every_figure_and_they_are_finite(report, layout, scorer_run, expert_run):  # noqa: F811
    from mumo.cli._json import strict_json

    assert report["clips"] == 2 and report["split"] == "test" and report["variant"] == "expert"
    assert report["frames"] == sum(r["frames"] for r in report["per_clip"]) > 0
    settings = [report["in_sync"]["generated"], report["in_sync"]["real"], report["dubbing"]["generated"]]
    for s in settings:
        assert set(s) == SETTING_KEYS and s["clips"] == 2
        assert all(math.isfinite(s[k]) for k in ("lse_d", "lse_c", "abs_offset")) and 0 <= s["within_one_frame"] <= 1
    q = report["in_sync"]["image_quality"]
    assert set(q) == {"psnr", "ssim", "psnr_lower", "ssim_lower"} and all(math.isfinite(v) for v in q.values())
    assert q["psnr"] > 0 and -1 <= q["ssim_lower"] <= 1 and math.isfinite(report["in_sync"]["l1_lower"])
    scorer = report["scorer"]
    assert scorer["run"] == str(scorer_run) and Path(scorer["training_expert"]) == expert_run.resolve()
    assert scorer["weights_compared"] and len(scorer["sha256"]) == 64
    names = [c.name for c in _test_clips(layout)]
    assert [r["clip"] for r in report["per_clip"]] == names
    assert [r["dubbing"]["audio"] for r in report["per_clip"]] == names[::-1]  # each dubbed with the other speaker
    assert json.loads(strict_json(report))["clips"] == 2


def test_the_real_clips_offsets_are_what_the_metrics_give_for_them(report, layout, scorer_run):
    from mumo.metrics.sync import offset_distances, sync_scores
    from mumo.tasks.lipsync.train import load_expert

    scorer = load_expert(scorer_run)
    for clip, row in zip(_test_clips(layout), report["per_clip"], strict=True):
        g = row["frames"]
        real = LipSyncClip(clip.name, clip.mouths[:g], clip.mel, faces=clip.faces[:g])
        faces, mels = real.windows()
        with torch.no_grad():
            out = scorer(faces, mels)
        expected = sync_scores(offset_distances(out.face_embedding, out.audio_embedding, max_offset=15))
        assert row["real"]["offset_frames"] == expected["offset_frames"]
        assert row["real"]["lse_d"] == pytest.approx(expected["lse_d"], abs=1e-5)
        assert row["real"]["lse_c"] == pytest.approx(expected["lse_c"], abs=1e-5)
        assert row["real"]["windows"] == g - 4


def test_psnr_and_ssim_are_torchmetrics_on_the_generated_frames(report, layout, generator_run):
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    from mumo.models.wav2lip import lower_half
    from mumo.tasks.lipsync.evaluate import generate_clip
    from mumo.tasks.lipsync.train import load_lipsync_model

    generator = load_lipsync_model(generator_run)
    for clip, row in zip(_test_clips(layout), report["per_clip"], strict=True):
        gen = generate_clip(generator, clip)
        assert gen.generated.shape == gen.real.shape == (row["frames"], 3, 96, 96)
        assert torch.equal(gen.generated, gen.generated.mul(255).round().div(255))  # 8 bits, as a written video
        assert torch.equal(gen.real, clip.faces[: row["frames"]].permute(0, 3, 1, 2).float() / 255)
        q = row["image_quality"]
        for suffix, (a, b) in {"": (gen.generated, gen.real),
                               "_lower": (lower_half(gen.generated), lower_half(gen.real))}.items():  # fmt: skip
            a, b = a.contiguous(), b.contiguous()
            psnr = peak_signal_noise_ratio(a, b, data_range=1.0, dim=(1, 2, 3))
            assert q[f"psnr{suffix}"] == pytest.approx(float(psnr), rel=1e-6)
            assert q[f"ssim{suffix}"] == pytest.approx(float(structural_similarity_index_measure(a, b, data_range=1.0)))


class _Echo(nn.Module):
    """A stand-in generator that returns each frame's reference face (channels 3-5 of its input)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))  # a parameter, so the caller finds a device
        self.inputs: list[torch.Tensor] = []

    def forward(self, faces: torch.Tensor, mels: torch.Tensor) -> torch.Tensor:
        self.inputs.append(faces.clone())
        return faces[:, :, 3:]


def _numbered_clip(frames: int) -> LipSyncClip:
    """Frame t's pixels all equal t; audio for every frame."""
    faces = torch.arange(frames, dtype=torch.uint8)[:, None, None, None].expand(frames, 96, 96, 3).clone()
    return LipSyncClip("spk/numbered", faces[:, 48:], torch.zeros(80, frames * 80 // 25 + 16), faces=faces)


@pytest.mark.parametrize("frames", [6, 7, 12, 33, 40])
def test_the_reference_frames_are_never_the_target_frames(frames):
    from mumo.tasks.lipsync.evaluate import generate_clip

    echo = _Echo()
    gen = generate_clip(echo, _numbered_clip(frames), batch_size=2)
    g = gen.generated.shape[0]
    assert g == frames  # every frame generated
    seen = torch.cat([x.flatten(0, 1) for x in echo.inputs])  # (N, 6, 96, 96): what reached the generator
    targets = seen[:, 0, 0, 0].mul(255).round().long()  # the masked target's upper half: its frame number
    references = seen[:, 3].flatten(1).mul(255).round().long()  # (N, 96*96) the reference channels
    assert not torch.any(references == targets[:, None])  # no pixel of a target frame reached it as its reference
    assert torch.all(seen[:, :3, 48:] == 0)  # the target's lower half is masked
    assert set(targets.tolist()) == set(range(frames))
    echoed = gen.generated[:, 0, 0, 0].mul(255).round().long()  # (G,) the reference each frame's face came from
    assert torch.equal(echoed, gen.reference) and not torch.any(gen.reference == torch.arange(g))


def test_a_clip_too_short_for_another_reference_is_refused():
    from mumo.tasks.lipsync.evaluate import evaluation_windows

    with pytest.raises(MumoError, match="6 frames or more"):
        evaluation_windows(_numbered_clip(5))


def test_the_uncertainty_is_measured_and_checked_against_the_errors(report):
    u = report["uncertainty"]
    assert u["mc_samples"] == 3 and u["frames"] == report["frames"]
    assert math.isfinite(u["mean"]) and u["mean"] >= 0
    assert -1.0 <= u["spearman_error"] <= 1.0
    assert all(math.isfinite(r["uncertainty"]) for r in report["per_clip"])


class _DroppedEcho(_Echo):
    """The echo through an ``nn.Dropout(0.5)``: each pixel of a sample is 0 or twice the reference's value v, so its
    standard deviation over many samples is v; with dropout off, the reference itself."""

    def __init__(self) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.5)

    def forward(self, faces: torch.Tensor, mels: torch.Tensor) -> torch.Tensor:
        return self.dropout(faces[:, :, 3:])


def test_a_frames_uncertainty_is_its_lower_halfs_spread_over_the_dropout_samples():
    from mumo.tasks.lipsync.evaluate import generate_clip

    model = _DroppedEcho()
    gen = generate_clip(model, _numbered_clip(12), mc_samples=64, batch_size=1)
    assert not model.training  # the samples leave the model in eval mode
    assert torch.equal(gen.generated[:, 0, 0, 0].mul(255).round().long(), gen.reference)  # dropout off
    assert gen.uncertainty.shape == (12, 48, 96)
    expected = gen.reference.float() / 255  # (G,) the reference's value: the spread of 0 or 2v
    assert torch.allclose(gen.frame_uncertainty(), expected, rtol=0.05, atol=1e-3)
    assert torch.allclose(gen.frame_error(), (gen.reference - torch.arange(12)).abs().float() / 255)


def test_the_contact_sheet_is_a_png_of_real_masked_generated_and_uncertainty_rows(report, sheet_path):
    assert report["sheet"] == str(sheet_path) and sheet_path.is_file()
    assert not list(sheet_path.parent.glob(".*.tmp"))  # written through a temporary file
    with Image.open(sheet_path) as image:
        image.verify()
    with Image.open(sheet_path) as image:
        assert image.format == "PNG"
        assert image.size == (120 * (2 * 4 + 1), 120 * 4 + 60)  # 2 clips x 4 frames (+ labels), 4 rows (+ titles)


# -- through the CLI -----------------------------------------------------------------------------------------------


def test_mumo_evaluate_prints_the_figures_and_json(generator_run, scorer_run, layout, tmp_path):
    moved = shutil.copytree(layout, tmp_path / "moved")  # --data: the data set elsewhere than the run's data.root
    args = ("evaluate", generator_run, "--scorer", scorer_run, "--clips", "1", "--mc-samples", "0", "--data", moved)
    result = run_cli(*args, "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout[result.stdout.index("{") :])
    assert figures["clips"] == 1 and figures["sheet"] is None and figures["data_root"] == str(moved)
    assert "skipped" in figures["dubbing"] and figures["uncertainty"]["mc_samples"] == 0  # one speaker: no dubbing
    text = run_cli("evaluate", generator_run, "--scorer", scorer_run, "--clips", "1", "--mc-samples", "0")
    assert text.exit_code == 0 and f"scored by {scorer_run}" in text.stdout and "LSE-D" in text.stdout


def test_bad_scorers_are_refused(generator_run, expert_run, tmp_path):  # noqa: F811
    assert_clear_error(run_cli("evaluate", generator_run), "needs --scorer")
    vqa = tmp_path / "vqa"
    vqa.mkdir()
    (vqa / "artifacts.json").write_text(json.dumps({"kind": "vqa"}))
    assert_clear_error(run_cli("evaluate", generator_run, "--scorer", vqa), "holds a 'vqa' checkpoint", "--scorer")
    own = run_cli("evaluate", generator_run, "--scorer", generator_run)
    assert_clear_error(own, "holds a 'lipsync' checkpoint, not a lip-sync expert")
    same = run_cli("evaluate", generator_run, "--scorer", expert_run)
    assert_clear_error(same, "is the expert this generator trained against")
    link = tmp_path / "link"
    link.symlink_to(expert_run, target_is_directory=True)
    assert_clear_error(run_cli("evaluate", generator_run, "--scorer", link), "is the expert this generator trained")
    copy = shutil.copytree(expert_run, tmp_path / "copy")
    assert_clear_error(run_cli("evaluate", generator_run, "--scorer", copy), "holds the same weights as the expert")


def test_bad_options_are_refused(generator_run, scorer_run, tmp_path):
    common = ("evaluate", generator_run, "--scorer", scorer_run)
    assert_clear_error(run_cli(*common, "--clips", "0"), "--clips must be >= 1")
    assert_clear_error(run_cli(*common, "--ood", "noise"), "--ood is a VQA option")
    assert_clear_error(run_cli(*common, "--images", "5"), "--clips N")
    assert_clear_error(run_cli(*common, "--split", "train"), "--split must be 'val' or 'test'")
    assert_clear_error(run_cli(*common, "--mc-samples", "1"), "--mc-samples must be 0 (off) or at least 2")
    vqa = tmp_path / "vqa"
    vqa.mkdir()
    (vqa / "artifacts.json").write_text(json.dumps({"kind": "vqa"}))
    assert_clear_error(run_cli("evaluate", vqa, "--scorer", scorer_run), "--scorer is for lip-sync generator runs")
    assert_clear_error(
        run_cli("evaluate", vqa, "--clips", "3"), "--clips is for lip-sync generator or lip-to-speech runs"
    )
