"""Load a trained VQA run and answer questions about images."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mumo.config import RunConfig, config_from_yaml
from mumo.data.images import ImageInput, load_image
from mumo.data.text import Vocab, check_question
from mumo.errors import MumoError
from mumo.tasks.vqa import load_artifacts, load_model
from mumo.train.checkpoint import CONFIG_FILE
from mumo.types import AnswerScore, Prediction, VQABatch


class VQAPredictor:
    """A trained VQA model with its preprocessing. Build it with :func:`mumo.load`."""

    def __init__(self, model: nn.Module, cfg: RunConfig, vocab: Vocab, answers: list[str]) -> None:
        self.model, self.cfg, self.vocab, self.answers = model, cfg, vocab, answers

    @classmethod
    def from_run(cls, run_dir: str | Path, which: str = "best", device: str = "cpu") -> VQAPredictor:
        run_dir = Path(run_dir)
        art = load_artifacts(run_dir)
        cfg = config_from_yaml(run_dir / CONFIG_FILE)
        model = load_model(run_dir, which, device)
        return cls(model, cfg, Vocab(art["vocab"]), art["answers"])

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, image: ImageInput, question: str | bytes) -> VQABatch:
        """Preprocess one image-question pair into a batch of one."""
        text = check_question(question)
        pixels = load_image(image, size=self.cfg.data.image_size)  # (H, W, 3) uint8
        images = torch.from_numpy(pixels).permute(2, 0, 1).float().div(255.0)[None]  # (1, 3, H, W)
        tokens = self.vocab.encode_batch([text], self.cfg.data.max_question_len)  # (1, L)
        return VQABatch(images=images, tokens=tokens, image_index=torch.zeros(1, dtype=torch.long)).to(self.device)

    @torch.no_grad()
    def predict(self, image: ImageInput, question: str | bytes, *, top_k: int = 3) -> Prediction:
        """Answer ``question`` about ``image`` (a path, PIL image or array).

        Probabilities are the softmax over the answer logits.
        """
        if top_k < 1:
            raise MumoError(f"top_k must be >= 1, not {top_k}")
        batch = self.encode(image, question)
        self.model.eval()
        probs = self.model(batch).logits.float().softmax(dim=-1)[0]  # (C,)
        k = min(top_k, probs.numel())
        values, indices = probs.topk(k)
        top = [AnswerScore(self.answers[i], float(p)) for p, i in zip(values.tolist(), indices.tolist(), strict=True)]
        text = question.decode("utf-8") if isinstance(question, bytes) else question
        return Prediction(question=text, answer=top[0].answer, probability=top[0].probability, top_k=top)


def load(run_dir: str | Path, *, which: str = "best", device: str = "cpu") -> VQAPredictor:
    """Load a trained run: ``mumo.load("runs/vqa-...").predict(image, question, top_k=3)``."""
    return VQAPredictor.from_run(run_dir, which=which, device=device)
