"""Diagnostic: can MCAN answer Sort-of-CLEVR once it is told where the named object is? (issue #3)

Trains ``mcan-cpu`` (with ``model.cnn_skip`` and ``model.grid_position``) on the first 4,000 training
images with an extra loss: KL(object-mask distribution || the image AttFlat attention), the masks being
the generator's masks of the objects each question refers to, pooled to the grid. It is a probe of where
the plain model is stuck (finding the object, or using it), with a minimal loop of its own. It is not a
training recipe: the product's is ``objective.attention_loss=masks`` (per-step targets, the ``mcan-sort-of-clevr``
preset, ``benchmarks/sort_of_clevr.py``). Reports test accuracy per epoch, for supervision on every question
and on non-relational questions only.

    python benchmarks/mask_supervision.py [--epochs 6] [--weight 1.0]   # writes results/mask_supervision.json
"""

from __future__ import annotations

import argparse
import json
import time

from _common import RESULTS

N_IMAGES = 4000


def run(epochs: int, weight: float, non_relational_only: bool) -> list[dict]:
    import torch
    import torch.nn.functional as F

    from mumo.data.vqa.masks import pool_to_grid, sort_of_clevr_question_masks
    from mumo.data.vqa.sort_of_clevr import is_relational, load_sort_of_clevr
    from mumo.models import create_model
    from mumo.tasks import load_config
    from mumo.tasks.vqa.data import sort_of_clevr_root

    cfg = load_config("mcan-cpu", ["data.name=sort-of-clevr", "data.image_size=75", "model.cnn_skip=true",
                                   "model.grid_position=true"])  # fmt: skip
    root = sort_of_clevr_root(cfg)
    train, vocab, answers = load_sort_of_clevr(root, split="train")
    test, _, _ = load_sort_of_clevr(root, split="test", vocab=vocab)
    masks = sort_of_clevr_question_masks(root, "train")  # (Q, 75, 75), train question order
    supervised = torch.tensor([not (non_relational_only and is_relational(f)) for f in train.question_types])
    relational = torch.tensor([is_relational(f) for f in test.question_types])
    torch.manual_seed(0)
    model = create_model(cfg.model, vocab=vocab.tokens, num_answers=len(answers))
    opt = torch.optim.Adam(model.parameters(), cfg.train.lr, betas=tuple(cfg.train.betas), eps=cfg.train.eps)
    curve = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(N_IMAGES, generator=torch.Generator().manual_seed(epoch))
        for start in range(0, N_IMAGES, cfg.train.batch_size):
            batch = train.batch(order[start : start + cfg.train.batch_size])
            out = model(batch, output_attentions=True)
            loss = F.binary_cross_entropy_with_logits(out.logits, batch.targets, reduction="sum")
            keep = supervised[batch.question_ids]  # (N,)
            attention = out.attentions["image_flat"][keep, :, 0]  # (N', R)
            target = pool_to_grid(masks[batch.question_ids[keep]], out.grid)  # (N', R)
            target = target / target.sum(1, keepdim=True).clamp(min=1e-9)
            loss = loss + weight * F.kl_div(attention.clamp(min=1e-9).log(), target, reduction="sum")
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        correct = torch.zeros(len(test.question_types), dtype=torch.bool)
        with torch.no_grad():
            for start in range(0, test.num_images, 50):
                batch = test.batch(torch.arange(start, min(start + 50, test.num_images)))
                correct[batch.question_ids] = model(batch).logits.argmax(1) == batch.targets.argmax(1)
        curve.append({"epoch": epoch + 1, "test_relational": round(correct[relational].float().mean().item(), 4),
                      "test_non_relational": round(correct[~relational].float().mean().item(), 4),
                      "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
        print(json.dumps({"non_relational_only": non_relational_only, **curve[-1]}), flush=True)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--weight", type=float, default=1.0)
    args = parser.parse_args()
    result = {"train_images": N_IMAGES, "weight": args.weight, "model": "mcan-cpu + cnn_skip + grid_position",
              "every_question": run(args.epochs, args.weight, False),
              "non_relational_only": run(args.epochs, args.weight, True)}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mask_supervision.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
