"""The Clever Hans probe: a question-only model is flagged, a model that reads the image is not."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mumo.data.vqa.split import VQASplit
from mumo.errors import CheckpointError, MumoError
from mumo.models import create_model
from mumo.tasks.vqa.probe import CONDITIONS, derangement, probe_run, probe_vqa
from mumo.types import VQABatch, VQAOutput
from tests.conftest import tiny_config

KEYS = {f"accuracy_{c}" for c in CONDITIONS} | {"answer_change_rate", "looks_at_image", "verdict", "num_questions"}


class _ReadsTheImage(nn.Module):
    """Answers from the image alone: answer index = mean intensity * (C - 1), rounded."""

    def __init__(self, num_answers: int) -> None:
        super().__init__()
        self.num_answers = num_answers

    def forward(self, batch: VQABatch) -> VQAOutput:
        mean = batch.images.flatten(1).mean(1)  # (B,)
        answer = (mean * (self.num_answers - 1)).round().long()[batch.image_index]  # (N,)
        return VQAOutput(F.one_hot(answer, self.num_answers).float())  # (N, C)


def _image_coded_split(num_images: int = 6) -> VQASplit:
    """Image i is a flat grey of intensity i / (I - 1), and both of its questions have answer i (C = I)."""
    shade = (torch.arange(num_images) * 255 // (num_images - 1)).to(torch.uint8)  # (I,)
    images = shade[:, None, None, None].expand(num_images, 3, 4, 4).contiguous()  # (I, 3, 4, 4)
    image_index = torch.arange(num_images).repeat_interleave(2)  # (Q,) two questions per image
    return VQASplit(
        name="test",
        images=images,
        tokens=torch.randint(2, 5, (2 * num_images, 3)),
        image_index=image_index,
        targets=F.one_hot(image_index, num_images).float(),
        questions=["q"] * (2 * num_images),
        question_types=["a", "b"] * num_images,
        image_ids=list(range(num_images)),
    )


@pytest.mark.parametrize("n", [2, 3, 10, 1000])
def test_derangement_is_a_seeded_permutation_without_fixed_points(n):
    perm = derangement(n, seed=3)
    assert torch.equal(perm.sort().values, torch.arange(n))
    assert not (perm == torch.arange(n)).any()
    assert torch.equal(perm, derangement(n, seed=3))
    if n == 1000:
        assert not torch.equal(perm, derangement(n, seed=4))


def test_derangement_of_one_image_is_an_error():
    with pytest.raises(MumoError, match="at least 2 images"):
        derangement(1)


def test_question_only_model_is_flagged(easy_vqa_data):
    cfg = tiny_config("model.blank=image")
    torch.manual_seed(0)
    model = create_model(cfg.model, vocab=easy_vqa_data.vocab.tokens, num_answers=len(easy_vqa_data.answers))
    split = easy_vqa_data.test.subset_images(torch.arange(60))
    before = {k: v.clone() for k, v in vars(split).items() if isinstance(v, torch.Tensor)}
    model.train()
    res = probe_vqa(model, split, images_per_batch=16)
    assert model.training, "the probe restores the model's mode"
    for k, v in before.items():
        assert torch.equal(getattr(split, k), v), f"split.{k} was changed"
    assert res.keys() >= KEYS | {"by_type"}
    assert res["answer_change_rate"] == 0.0
    assert res["accuracy_real"] == res["accuracy_blank_image"] == res["accuracy_shuffled_image"]
    assert res["looks_at_image"] is False and "without looking" in res["verdict"]
    assert set(res["by_type"]) == {"yes/no", "color", "shape"}
    for r in res["by_type"].values():
        assert r.keys() == KEYS and r["answer_change_rate"] == 0.0 and r["looks_at_image"] is False
    assert sum(r["num_questions"] for r in res["by_type"].values()) == res["num_questions"] == split.num_questions


def test_model_that_reads_the_image_is_not_flagged():
    split = _image_coded_split()
    res = probe_vqa(_ReadsTheImage(split.num_images), split, images_per_batch=4)  # shuffles cross batches
    assert res["accuracy_real"] == 1.0
    assert res["accuracy_blank_question"] == 1.0  # it never reads the question
    assert res["accuracy_blank_image"] == pytest.approx(1 / 6)  # a black image is image 0
    assert res["accuracy_shuffled_image"] == 0.0  # no question keeps its own image
    assert res["answer_change_rate"] == 1.0
    assert res["looks_at_image"] is True and res["verdict"].startswith("Looks at the image")
    assert set(res["by_type"]) == {"a", "b"} and all(r["looks_at_image"] for r in res["by_type"].values())
    assert probe_vqa(_ReadsTheImage(6), split, images_per_batch=4) == res, "same seed, same result"


def test_thresholds_decide_the_flag():
    split, model = _image_coded_split(), _ReadsTheImage(6)
    res = probe_vqa(model, split, min_change_rate=1.01)  # every answer changes, but that is not enough
    assert res["looks_at_image"] is False and "fewer than" in res["verdict"]
    res = probe_vqa(model, split, min_accuracy_drop=1.01)  # accuracy falls by 100 points, not enough
    assert res["looks_at_image"] is False and "accuracy points" in res["verdict"]


def test_region_features_blanked_to_zero_still_run():
    cfg = tiny_config("model.image_encoder=regions", "model.region_dim=8")
    torch.manual_seed(0)
    model = create_model(cfg.model, vocab=["<pad>", "<unk>", "a", "b", "c"], num_answers=4)
    image_index = torch.arange(5).repeat_interleave(3)  # (Q,) 5 images, 3 questions each
    split = VQASplit(
        name="val", images=torch.randn(5, 7, 8), tokens=torch.randint(2, 5, (15, 4)), image_index=image_index,
        targets=F.one_hot(torch.randint(0, 4, (15,)), 4).float(), questions=["q"] * 15,
        question_types=["t"] * 15, image_ids=list(range(5)),
    )  # fmt: skip
    res = probe_vqa(model, split)
    assert all(0.0 <= res[f"accuracy_{c}"] <= 1.0 for c in CONDITIONS)
    assert set(res["by_type"]) == {"t"}


def test_nan_logits_are_a_clear_error():
    class _NaN(nn.Module):
        def forward(self, batch: VQABatch) -> VQAOutput:
            return VQAOutput(torch.full((batch.tokens.shape[0], 6), float("nan")))

    with pytest.raises(MumoError, match="NaN"):
        probe_vqa(_NaN(), _image_coded_split())


def test_probe_run_on_a_trained_run_and_on_bad_directories(tiny_run, tmp_path):
    res = probe_run(tiny_run, "val", max_images=20)
    assert res["num_images"] == 20 and res["split"] == "val" and res.keys() >= KEYS
    with pytest.raises(CheckpointError, match="not a mumo run"):
        probe_run(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        probe_run(tmp_path / "nope")
