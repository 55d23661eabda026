"""Question generation end to end on a tiny mumo scenes set: data, training on the shared loop, decoding, the
evaluation's figures, and `mumo train vqg` / `mumo generate-questions` / `mumo evaluate` through the CLI with bad
input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mumo.data.vqg.tags import question_tags
from tests.cli._invoke import assert_clear_error, run_cli

TINY = ["model.hidden=32", "model.word_dim=16", "model.cnn_channels=[8,16]", "model.cnn_pool=2",
        "data.image_size=32", "train.epochs=2", "train.batch_size=32", "train.decay_epochs=[]"]  # fmt: skip


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    from mumo.data.scenes.dataset import generate

    root = tmp_path_factory.mktemp("scenes") / "set"
    generate(root, n_images=80, seed=3, size=64)
    return root


@pytest.fixture(scope="module")
def vqg_run(scenes, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "vqg"
    result = run_cli("train", "vqg", "--out", out, "--json", f"data.root={scenes}", *TINY)
    assert result.exit_code == 0, result.output
    return out


def test_question_tags_are_the_first_content_words():
    assert question_tags("What colour is the large star?") == ["colour", "large", "star"]
    assert question_tags("how many objects are there?") == ["many", "objects"]
    assert question_tags("is this a room?") == ["room"]
    assert question_tags("is it?") == ["is"]  # no content word: the first word


def test_the_data_split_holds_every_question_and_its_tags(scenes):
    from mumo.tasks.vqg.config import load_vqg_config
    from mumo.tasks.vqg.data import EOS_ID, detokenize, load_vqg_data

    cfg = load_vqg_config("vqg-cpu", [f"data.root={scenes}", "data.image_size=32"])
    data = load_vqg_data(cfg)
    train = data.train
    assert train.images.shape[1:] == (3, 32, 32) and train.images.dtype == torch.uint8
    assert int(train.num_questions[0]) == len(train.records[0].questions) == 10
    for j, q in enumerate(train.records[0].questions):  # each question comes back as text, EOS after its words
        row = train.questions[0, j].tolist()
        assert EOS_ID in row
        assert detokenize(row, data.vocab) == " ".join(q.lower().rstrip("?").split()) + "?"
    assert sorted(data.places) == data.places and set(data.places) >= {r.place for r in train.records}
    assert (train.tag_targets.sum(1) > 0).all()


def test_a_run_trains_and_its_files_load(vqg_run):
    from mumo.runs import Run
    from mumo.tasks import task_of_run

    assert Run(vqg_run).kind == "vqg"
    assert (vqg_run / "vocab.json").is_file()
    model = task_of_run(vqg_run).load_model(vqg_run)
    assert not model.training and model.cfg.cues == ["image", "place", "caption", "tag"]


def test_generation_gives_t_questions_each_with_its_uncertainty(vqg_run, scenes):
    import mumo

    predictor = mumo.load(vqg_run, device="cpu")
    image = next((scenes / "images" / "test").glob("*.png"))
    res = predictor.generate(image, samples=4, seed=1)
    assert len(res["questions"]) == 4 and res["samples"] == 4
    for q in res["questions"]:
        assert q["question"].endswith("?") and q["entropy"] >= q["epistemic"] >= 0
        assert isinstance(q["valid"], bool)
    assert res["cues"]["place"].startswith("predicted") and res["cues"]["tag"].startswith("predicted")
    assert res["cues"]["caption"].startswith("none")
    assert res["moderator"]["caption"] == 0.0 and abs(sum(res["moderator"].values()) - 1) < 1e-5
    again = predictor.generate(image, samples=4, seed=1)
    assert [q["question"] for q in again["questions"]] == [q["question"] for q in res["questions"]]
    det = predictor.generate(image, samples=3, mc=False, caption="a red star on a beach", tags=["red", "zebra"])
    assert len({q["question"] for q in det["questions"]}) == 1  # MC-SMN: one deterministic pass
    assert det["unknown_words"] == ["zebra"] and det["cues"]["tag"] == "given: red, zebra"
    beam = predictor.generate(image, samples=2, method="beam", beam=3)
    sampled = predictor.generate(image, samples=2, method="sample", temperature=0.7)
    assert all(q["question"] for q in beam["questions"] + sampled["questions"])


def test_evaluation_reports_every_figure(vqg_run):
    from mumo.tasks import task_of_run

    task = task_of_run(vqg_run)
    report = task.evaluate(vqg_run, task.evaluation_options(split="test", images=6, mc_samples=3))
    f = report.to_dict()
    assert f["images"] == 6 and f["samples"] == 3
    for name in ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"):
        s = f["caption_metrics"][name]
        assert len(s["per_sample"]) == 3 and s["max"] >= s["mean"] >= min(s["per_sample"])
    assert 0 <= f["validity"] <= 1 and 0 <= f["answerability"] <= f["validity"]
    assert f["questions"] == 18 and "entropy" in f["bad_question_auroc"]
    assert f["cue_sources"]["tag"] == "from the first reference question"
    assert len(f["examples"]) == 6 and len(f["examples"][0]["references"]) == 5
    assert any("BLEU-1" in line for line in report.lines())


def test_the_cli_writes_questions_and_refuses_bad_input(vqg_run, scenes, tiny_run, shape_png):
    image = next((scenes / "images" / "test").glob("*.png"))
    ok = run_cli("generate-questions", vqg_run, "--image", image, "--samples", "2", "--json", "--place", "beach",
              "--caption", "two blue rings", "--tags", "blue,ring")  # fmt: skip
    assert ok.exit_code == 0, ok.output
    res = json.loads(ok.output)
    assert len(res["questions"]) == 2 and res["cues"]["place"] == "given: beach"
    text = run_cli("generate-questions", vqg_run, "--image", image, "--samples", "2")
    assert text.exit_code == 0 and "epistemic" in text.output
    ask = ("generate-questions", vqg_run, "--image", image)
    assert_clear_error(run_cli(*ask, "--place", "moon"), "unknown place", "beach")
    assert_clear_error(run_cli(*ask, "--samples", "0"), "--samples")
    assert_clear_error(run_cli(*ask, "--samples", "100000"), "--samples")
    assert_clear_error(run_cli(*ask, "--decode", "nucleus"), "decoding method")
    assert_clear_error(run_cli("generate-questions", vqg_run, "--image", scenes / "nope.png"), "not found")
    assert_clear_error(run_cli("generate-questions", tiny_run, "--image", shape_png), "question generator")
    assert_clear_error(run_cli("predict", vqg_run, "--image", image, "--question", "what?"), "generate-questions")
    assert_clear_error(run_cli("evaluate", vqg_run, "--ood", "noise"), "VQA option")


def test_evaluate_without_java_still_scores_the_rest(vqg_run, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no java on PATH
    result = run_cli("evaluate", vqg_run, "--images", "4", "--mc-samples", "2", "--json")
    assert result.exit_code == 0, result.output
    f = json.loads(result.output)
    assert f["caption_metrics"]["METEOR"]["mean"] is None
    assert "default-jre-headless" in f["missing_metrics"]["METEOR"]
    assert f["caption_metrics"]["BLEU-1"]["mean"] is not None


def test_a_generator_trains_and_evaluates_on_the_vqg_coco_format(tmp_path):
    root = Path(__file__).parents[2] / "fixtures" / "vqg_coco"
    out = tmp_path / "coco"
    result = run_cli("train", "vqg", "--data", "vqg-coco", "--out", out, "--json", f"data.root={root}",
                  "model.cues=image,caption,tag", "data.image_size=16", *TINY[:4])  # fmt: skip
    assert result.exit_code == 0, result.output
    from mumo.tasks import task_of_run

    task = task_of_run(out)
    f = task.evaluate(out, task.evaluation_options(split="test", mc_samples=2, meteor=False)).to_dict()
    assert f["images"] == 3 and "validity" not in f  # no scenes executor on COCO
    assert f["caption_metrics"]["BLEU-1"]["mean"] is not None and f["missing_metrics"]["METEOR"]
    refused = run_cli("train", "vqg", "--data", "vqg-coco", "--out", tmp_path / "x", f"data.root={root}")
    assert_clear_error(refused, "no place labels")
    image = next((root / "images" / "val2014").glob("*.jpg"))
    no_tags = run_cli("generate-questions", out, "--image", image)
    assert_clear_error(no_tags, "give --tags")
    ok = run_cli("generate-questions", out, "--image", image, "--tags", "dog,frisbee", "--samples", "2")
    assert ok.exit_code == 0, ok.output


def test_the_image_encoder_starts_from_a_vqa_runs_cnn_and_can_stay_frozen(scenes, tiny_run, tmp_path):
    from safetensors.torch import load_file

    from mumo.runs import Run
    from mumo.tasks import task_of_run

    vqa_cnn = {k.removeprefix("image_encoder."): v
               for k, v in load_file(Run(tiny_run).checkpoint("best") / "model.safetensors").items()
               if k.startswith("image_encoder.body.")}  # fmt: skip
    out = tmp_path / "frozen"
    args = [f"data.root={scenes}", "model.hidden=32", "model.word_dim=16", "model.cnn_channels=[8,8,16,16]",
            "model.cnn_pool=4", "data.image_size=64", "train.epochs=1", "train.batch_size=32",
            f"model.image_init={tiny_run}", "model.freeze_image=true"]  # fmt: skip
    result = run_cli("train", "vqg", "--out", out, *args)
    assert result.exit_code == 0, result.output
    encoder = task_of_run(out).load_model(out).image_encoder.state_dict()
    for key, value in vqa_cnn.items():  # copied, and not moved by training (BatchNorm statistics included)
        assert torch.equal(encoder[key], value), key
    mismatch = run_cli("train", "vqg", "--out", tmp_path / "bad", *args[:-2], "model.cnn_channels=[8,8,16,32]",
                    f"model.image_init={tiny_run}")  # fmt: skip
    assert_clear_error(mismatch, "does not fit", "cnn_channels")
    not_vqa = run_cli("train", "vqg", "--out", tmp_path / "bad2", *args[:-2], f"model.image_init={out}")
    assert_clear_error(not_vqa, "not a VQA model")


def test_a_vqg_coco_folder_without_its_question_file_is_one_clear_error(tmp_path):
    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    result = run_cli("train", "vqg", "--data", "vqg-coco", "--out", tmp_path / "run", f"data.root={root}",
                  "model.cues=image,caption,tag")  # fmt: skip
    assert_clear_error(result, "coco_train_all.csv")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_frozen_encoders_features_computed_once_give_the_same_loss_as_the_pixels(scenes, tiny_run):
    from mumo.tasks.vqg.config import load_vqg_config
    from mumo.tasks.vqg.data import load_vqg_data
    from mumo.tasks.vqg.train import build_vqg_task, frozen_features, make_batch, vqg_loss

    cfg = load_vqg_config("vqg-cpu", [f"data.root={scenes}", "model.hidden=32", "model.word_dim=16",
                                      "model.cnn_channels=[8,8,16,16]", "model.cnn_pool=4", "data.image_size=64",
                                      f"model.image_init={tiny_run}", "model.freeze_image=true"])  # fmt: skip
    data = load_vqg_data(cfg, splits=("train", "val"))
    task = build_vqg_task(cfg, data)
    cached = task.batches(0, 0, 1)[0]
    assert cached.features is not None and cached.images.numel() == 0  # the batch carries features, not pixels
    model = task.model.train()
    feats = frozen_features(model, data.train, 16)
    assert feats.regions.shape[0] == len(data.train)
    idx, q, c = torch.tensor([0, 5, 9]), torch.tensor([1, 2, 3]), torch.tensor([0, 1, 2])
    losses = []
    for features in (feats, None):
        torch.manual_seed(0)  # the same dropout masks for both
        losses.append(vqg_loss(model, make_batch(data.train, idx, q, c, len(data.places), features), cfg)[0])
    assert torch.allclose(losses[0], losses[1], atol=1e-5)


def test_an_epoch_can_show_each_image_with_several_of_its_questions(scenes):
    from mumo.tasks.vqg.config import load_vqg_config
    from mumo.tasks.vqg.data import load_vqg_data
    from mumo.tasks.vqg.train import build_vqg_task, epoch_choices

    cfg = load_vqg_config("vqg-cpu", [f"data.root={scenes}", *TINY, "data.questions_per_image=3"])
    data = load_vqg_data(cfg, splits=("train", "val"))
    question, caption = epoch_choices(data.train, torch.Generator().manual_seed(0), 3)
    assert question.shape == caption.shape == (3, len(data.train))
    assert all(len(set(question[:, i].tolist())) == 3 for i in range(len(data.train)))  # 3 distinct questions
    assert (question < data.train.num_questions).all()
    batches = build_vqg_task(cfg, data).batches(0, 0, 1)
    assert sum(len(b) for b in batches) == 3 * len(data.train)
    bad = run_cli("train", "vqg", "--out", "unused", f"data.root={scenes}", "data.questions_per_image=0")
    assert_clear_error(bad, "data.questions_per_image must be >= 1")
