"""Model registry: ``create_model(name, ...)`` and ``list_models()``."""

from __future__ import annotations

from torch import nn

from mumo.config import ModelConfig
from mumo.registry import Registry

models: Registry = Registry("model")


@models.register("mcan")
def _build_mcan(cfg: ModelConfig, *, vocab: list[str], num_answers: int) -> nn.Module:
    from mumo.data.glove import init_embedding
    from mumo.models.mcan_vqa import MCANVQA

    model = MCANVQA(cfg=cfg, vocab_size=len(vocab), num_answers=num_answers)
    if cfg.word_vectors != "none":
        init_embedding(model.question_encoder.embed, vocab, cfg.word_vectors)
    return model


def create_model(cfg: ModelConfig, *, vocab: list[str], num_answers: int) -> nn.Module:
    """Build the model named by ``cfg.name`` with freshly initialised weights."""
    return models.get(cfg.name)(cfg, vocab=vocab, num_answers=num_answers)


def list_models() -> list[str]:
    """Names of every registered model."""
    return models.names()
