"""The lip-sync generator's training on tiny real files: clips with their face crops -> 5-frame windows -> the four
variants through ``mumo train lipsync`` -> checkpoints; the frozen expert, the sync-weight schedule and its
resume, and one-line errors for bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mumo.data.av.clips import LipSyncClip, read_clip, read_filelist
from mumo.errors import CheckpointError, ConfigError
from tests.cli._invoke import assert_clear_error, run_cli
from tests.tasks.sync.test_sync import make_layout

TINY_EXPERT = ["model.face_channels=[8,8,16,16,32,32]", "model.audio_channels=[8,16,16,32]", "model.embedding=32",
               "data.pairs_per_epoch=256", "data.eval_pairs=64", "train.epochs=1", "train.batch_size=32"]  # fmt: skip
TINY = [
    "model.face_channels=[4,4,8,8,8,8,8]", "model.face_residual=[0,0,0,0,0,0]", "model.audio_channels=[4,4,8,8,8]",
    "model.audio_residual=[0,0,0,0]", "model.decoder_channels=[8,8,8,8,8,4,4]",
    "model.decoder_residual=[0,0,0,0,0,0]", "model.output_channels=4", "discriminator.channels=[4,4,4,4,4,4,4]",
    "data.windows_per_epoch=16", "data.eval_windows=8", "train.batch_size=8", "train.eval_batch_size=8",
    "train.epochs=1",
]  # fmt: skip
VARIANTS = ("l1", "lipgan", "expert", "expert+gan")


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    return make_layout(tmp_path_factory.mktemp("faces"))


@pytest.fixture(scope="module")
def expert_run(layout, tmp_path_factory) -> Path:
    """A tiny lip-sync expert trained for one epoch."""
    from mumo.tasks.sync.config import load_sync_config
    from mumo.tasks.sync.task import train_sync

    out = tmp_path_factory.mktemp("runs") / "expert"
    train_sync(load_sync_config("sync-cpu", [f"data.root={layout}", *TINY_EXPERT]), out, progress=False)
    return out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _train(layout: Path, out: Path, *overrides: str, data: Path | None = None):
    return run_cli("train", "lipsync", "--data", data or layout, "--out", out, "--json", *TINY, *overrides)


@pytest.fixture(scope="module")
def trained(layout, expert_run, tmp_path_factory) -> dict[str, Path]:
    """One epoch of each variant through the CLI; the expert run's files are the same afterwards."""
    before = {p.name: _digest(p) for p in expert_run.rglob("*.safetensors")}
    root, runs = tmp_path_factory.mktemp("lipsync"), {}
    for variant in VARIANTS:
        out = root / variant.replace("+", "-")
        result = _train(layout, out, f"objective.variant={variant}", f"objective.expert={expert_run}")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout[result.stdout.index("{") :])
        assert summary["variant"] == variant and summary["best_epoch"] == 1 and summary["best_val_l1"] > 0
        runs[variant] = out
    assert {p.name: _digest(p) for p in expert_run.rglob("*.safetensors")} == before
    return runs


# -- the clips and the windows ---------------------------------------------------------------------------------


def _clip(frames: int = 30, mel_steps: int | None = None) -> LipSyncClip:
    """Frame t's pixels all equal t; mel step j's values all equal j."""
    faces = torch.arange(frames, dtype=torch.uint8)[:, None, None, None].expand(frames, 96, 96, 3).clone()
    n_mel = mel_steps if mel_steps is not None else frames * 80 // 25 + 1
    mel = torch.arange(n_mel, dtype=torch.float32).expand(80, n_mel).clone()
    return LipSyncClip("c", faces[:, 48:], mel, faces=faces)


def test_clips_keep_their_faces_only_when_asked(layout):
    entry = read_filelist(layout, "train")[0]
    assert read_clip(layout, entry).faces is None
    clip = read_clip(layout, entry, keep_faces=True)
    assert clip.faces.shape == (40, 96, 96, 3) and clip.faces.dtype == torch.uint8
    assert torch.equal(clip.mouths, clip.faces[:, 48:]) and torch.equal(clip.mouths, read_clip(layout, entry).mouths)
    assert clip.mouths.untyped_storage().data_ptr() == clip.faces.untyped_storage().data_ptr()  # a view, no copy


def test_windows_hold_the_frames_and_each_frames_mel_window():
    from mumo.tasks.lipsync.data import sample_windows

    batch = sample_windows([_clip()], 12, torch.Generator().manual_seed(0))
    assert batch.target.shape == batch.reference.shape == (12, 5, 3, 96, 96) and len(batch) == 12
    assert batch.mels.shape == (12, 5, 1, 80, 16) and batch.sync_mel.shape == (12, 1, 80, 16)
    assert float(batch.target.min()) >= 0.0 and float(batch.target.max()) <= 1.0
    steps = torch.arange(16, dtype=torch.float32)
    for b in range(12):
        f = round(float(batch.target[b, 0].mean()) * 255)
        r = round(float(batch.reference[b, 0].mean()) * 255)
        assert abs(r - f) >= 5  # another window of the clip, 5 frames away or more
        for k in range(5):
            assert torch.all(batch.target[b, k] * 255 == f + k) and torch.all(batch.reference[b, k] * 255 == r + k)
            start = (80 * (f + k)) // 25  # frame f+k's mel window: the inference convention
            assert torch.equal(batch.mels[b, k, 0], start + steps.expand(80, 16))
        assert torch.equal(batch.sync_mel[b], batch.mels[b, 0])  # the 5-frame window's mel starts at frame f


def test_windows_are_seeded_and_stay_inside_the_audio():
    from mumo.tasks.lipsync.data import draw_windows, epoch_batches, num_generator_windows, sample_windows

    clips = [_clip(), _clip(30, mel_steps=40)]  # the second clip's audio ends after 0.5 s
    # frame g's mel window fits while floor(3.2 g) + 16 <= 40, so for g <= 7: windows start at frames 0..3; the
    # first clip's 97 steps hold frames 0..25's windows: starts 0..21 (the expert's windows go on to 25)
    assert num_generator_windows(clips[1]) == 4 and num_generator_windows(clips[0]) == 22
    windows = draw_windows(clips, 200, torch.Generator().manual_seed(3))
    assert {w.frame for w in windows if w.clip == 1} <= {0, 1, 2, 3}
    a, b = (sample_windows(clips, 6, torch.Generator().manual_seed(5)) for _ in range(2))
    assert torch.equal(a.target, b.target) and torch.equal(a.reference, b.reference) and torch.equal(a.mels, b.mels)
    first, again, other = (list(epoch_batches(clips, e, seed=0, num_batches=3, batch_size=4)) for e in (1, 1, 2))
    assert len(first) == 3 and all(torch.equal(x.target, y.target) for x, y in zip(first, again, strict=True))
    assert not torch.equal(first[0].target, other[0].target)
    # two processes split the epoch's batches between them, each as a single process would draw it
    halves = [list(epoch_batches(clips, 1, seed=0, num_batches=3, batch_size=4, rank=r, world=2)) for r in (0, 1)]
    assert torch.equal(halves[0][1].target, first[2].target) and torch.equal(halves[1][0].target, first[1].target)


def test_a_short_clip_takes_the_farthest_reference_it_has():
    from mumo.tasks.lipsync.data import draw_windows

    windows = draw_windows([_clip(7, mel_steps=60)], 20, torch.Generator().manual_seed(0))  # starts 0..2
    assert all(abs(w.reference - w.frame) == max(w.frame, 2 - w.frame) for w in windows)


# -- the config ------------------------------------------------------------------------------------------------


def test_presets_and_the_gan_variants_betas():
    from mumo.tasks import load_config

    cpu = load_config("wav2lip-cpu")
    assert cpu.task == "lipsync" and cpu.objective.variant == "expert" and cpu.train.batch_size == 16
    ref = load_config("wav2lip")
    assert ref.model.num_weights > 30e6 and ref.train.lr == ref.objective.disc_lr == 1e-4
    assert ref.train.betas == [0.9, 0.999]
    assert load_config("wav2lip", ["objective.variant=expert+gan"]).train.betas == [0.5, 0.999]
    assert load_config("wav2lip", ["objective.variant=lipgan", "train.betas=[0.9,0.99]"]).train.betas == [0.9, 0.99]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["objective.variant=gan"], "objective.variant must be one of l1, lipgan, expert, expert+gan"),
        (["objective.variant=expert+gan", "train.lr=3e-4"], "objective.disc_lr"),
        (["objective.gan_sync_weight=0.5", "objective.disc_weight=0.5"], "below 1"),
        (["model.frames=4"], "model.frames"),
        (["objective.variant=lipgan", "train.batch_size=1"], "batch_size >= 2"),
    ],
)
def test_bad_configs_name_the_key(overrides, message):
    from mumo.tasks import load_config

    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        load_config("wav2lip-cpu", overrides)


# -- the expert, the schedule ----------------------------------------------------------------------------------


def test_the_schedule_waits_for_the_threshold_then_stays_on():
    from mumo.tasks.lipsync.config import LipSyncObjective
    from mumo.tasks.lipsync.train import SyncSchedule

    schedule = SyncSchedule.from_objective(LipSyncObjective(variant="expert", sync_threshold=0.75))
    records = [{"sync_loss": loss} for loss in (0.9, 0.8, 0.7, 0.9)]
    for epoch, record in enumerate(records):
        schedule(epoch, record)
    assert [r["sync_weight"] for r in records] == [0.0, 0.0, 0.0, 0.01]  # the epoch after the 0.7 trains with it
    assert [r["sync_switch_epoch"] for r in records] == [0, 0, 3, 3] and schedule.weight == 0.01
    gan = SyncSchedule.from_objective(LipSyncObjective(variant="expert+gan", sync_from_start=True))
    assert gan.weight == 0.03
    never = SyncSchedule.from_objective(LipSyncObjective(variant="expert", sync_threshold=0.0))
    never(0, {"sync_loss": 0.01})
    assert never.weight == 0.0


def test_the_expert_is_frozen_but_passes_gradients_to_the_faces(layout, expert_run, tmp_path):
    from mumo.models.sync_expert import SyncExpert, SyncExpertConfig
    from mumo.tasks.lipsync.config import load_lipsync_config
    from mumo.tasks.lipsync.data import load_lipsync_data
    from mumo.tasks.lipsync.train import build_lipsync_task, check_expert, expert_sync_loss, load_expert
    from mumo.tasks.sync.task import load_sync_expert
    from mumo.train.loop import fit

    expert = load_expert(expert_run)
    before = {k: v.clone() for k, v in expert.state_dict().items()}  # BatchNorm statistics included
    same = load_sync_expert(expert_run).state_dict()  # read as the sync task reads its runs
    assert before.keys() == same.keys() and all(torch.equal(v, same[k]) for k, v in before.items())
    assert expert.cfg == load_sync_expert(expert_run).cfg
    cfg = load_lipsync_config("wav2lip-cpu", [*TINY, "objective.variant=expert+gan", "objective.sync_from_start=true",
                                               "train.cpu=true"])  # fmt: skip
    task = build_lipsync_task(cfg, load_lipsync_data(layout, progress=False), expert=expert)
    fit(task, cfg.train, tmp_path / "run", progress=False)
    assert not expert.training and not any(p.requires_grad for p in expert.parameters())
    assert all(torch.equal(v, before[k]) for k, v in expert.state_dict().items())
    faces = torch.rand(2, 5, 3, 96, 96, requires_grad=True)
    expert_sync_loss(expert, faces, torch.randn(2, 1, 80, 16)).backward()
    assert faces.grad is not None and float(faces.grad[:, :, :, 48:].abs().sum()) > 0  # the lower halves only
    assert float(faces.grad[:, :, :, :48].abs().sum()) == 0
    with pytest.raises(ConfigError, match="its expert scores 3 frames of 48x96"):
        check_expert(SyncExpert(cfg=SyncExpertConfig(frames=3)))


# -- the four variants through the CLI ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_trains_an_epoch_and_checkpoints_its_models(trained, variant):
    run = trained[variant]
    ckpt = run / "checkpoints" / "epoch-0001"
    names = {p.name for p in ckpt.glob("*.safetensors")}
    assert "model.safetensors" in names
    assert ("discriminator.safetensors" in names) == (variant in ("lipgan", "expert+gan"))
    history = json.loads((run / "state.json").read_text())["history"]
    assert {"l1", "sync_loss", "val_loss", "neg_val_loss"} <= set(history[0])  # an expert was named: sync scored
    assert json.loads((run / "artifacts.json").read_text())["kind"] == "lipsync"
    from mumo.models.wav2lip import Wav2Lip
    from mumo.tasks import get_task

    model = get_task("lipsync").load_model(run)
    assert isinstance(model, Wav2Lip) and not model.training


def test_the_schedule_switches_on_and_a_resumed_run_ends_as_an_uninterrupted_one(layout, expert_run, tmp_path):
    common = ["objective.variant=expert+gan", f"objective.expert={expert_run}", "objective.sync_threshold=10"]
    whole = _train(layout, tmp_path / "whole", *common, "train.epochs=2")
    assert whole.exit_code == 0, whole.output
    history = json.loads((tmp_path / "whole" / "state.json").read_text())["history"]
    assert [h["sync_weight"] for h in history] == [0.0, 0.03]  # below 10 after epoch 1: on from epoch 2
    assert [h["sync_switch_epoch"] for h in history] == [1, 1]

    first = _train(layout, tmp_path / "split", *common)  # stopped after epoch 1
    assert first.exit_code == 0, first.output
    resumed = run_cli("train", "lipsync", "--out", tmp_path / "split", "--resume", "train.epochs=2", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout[resumed.stdout.index("{") :])["sync_switch_epoch"] == 1
    split = json.loads((tmp_path / "split" / "state.json").read_text())["history"]
    assert [h["sync_weight"] for h in split] == [0.0, 0.03] and split[1]["l1"] == history[1]["l1"]
    for name in ("model", "discriminator"):
        a = load_file(tmp_path / "whole" / "checkpoints" / "epoch-0002" / f"{name}.safetensors")
        b = load_file(tmp_path / "split" / "checkpoints" / "epoch-0002" / f"{name}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


# -- bad input: one line, exit 2 ---------------------------------------------------------------------------------


def test_an_expert_variant_without_an_expert_is_refused(layout, tmp_path):
    assert_clear_error(_train(layout, tmp_path / "run"), "objective.variant=expert needs objective.expert")
    assert not (tmp_path / "run").exists()


def test_a_run_that_is_not_a_sync_expert_is_refused(layout, tiny_run, trained, tmp_path):
    vqa = _train(layout, tmp_path / "a", f"objective.expert={tiny_run}")
    assert_clear_error(vqa, "holds a 'vqa' checkpoint, not a lip-sync expert", "objective.expert")
    own = _train(layout, tmp_path / "b", "objective.variant=expert+gan", f"objective.expert={trained['l1']}")
    assert_clear_error(own, "holds a 'lipsync' checkpoint, not a lip-sync expert")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(CheckpointError, match="not a lip-sync generator"):
        from mumo.tasks.lipsync.train import load_lipsync_model

        load_lipsync_model(tiny_run)


def test_an_unknown_variant_is_refused(layout, tmp_path):
    result = _train(layout, tmp_path / "run", "objective.variant=wav2lip")
    assert_clear_error(result, "objective.variant must be one of")


def test_a_folder_that_is_not_a_talking_face_set_is_refused(layout, tmp_path):
    (tmp_path / "photos").mkdir()
    result = _train(layout, tmp_path / "run", "objective.variant=l1", data=tmp_path / "photos")
    assert_clear_error(result, "is not a talking-face data set")
    assert not (tmp_path / "run").exists()


def test_evaluation_needs_an_independent_scorer(trained):
    assert_clear_error(run_cli("evaluate", trained["l1"]), "--scorer")
