"""Model registry: ``create_model(name, ...)`` and ``list_models()``."""

from __future__ import annotations

from typing import Any

from torch import nn

from mumo.registry import Registry

models: Registry = Registry("model")


@models.register("mcan")
def _build_mcan(cfg: Any, *, vocab: list[str], num_answers: int) -> nn.Module:
    """MCAN for VQA (:class:`mumo.models.mcan_vqa.MCANConfig`), its embedding from GloVe when asked."""
    from mumo.data.glove import init_embedding
    from mumo.models.mcan_vqa import MCANVQA

    model = MCANVQA(cfg=cfg, vocab_size=len(vocab), num_answers=num_answers)
    if cfg.word_vectors != "none":
        init_embedding(model.question_encoder.embed, vocab, cfg.word_vectors)
    return model


@models.register("sync_expert")
def _build_sync_expert(cfg: Any) -> nn.Module:
    """The lip-sync expert (:class:`mumo.models.sync_expert.SyncExpertConfig`)."""
    from mumo.models.sync_expert import SyncExpert

    return SyncExpert(cfg=cfg)


@models.register("vqg_bmn")
def _build_vqg_bmn(cfg: Any, *, vocab_size: int, num_places: int, num_tags: int) -> nn.Module:
    """MC-BMN, the Bayesian multi-cue question generator (:class:`mumo.models.vqg_bmn.VQGConfig`)."""
    from mumo.models.vqg_bmn import VQGBMN

    return VQGBMN(cfg, vocab_size=vocab_size, num_places=num_places, num_tags=num_tags)


@models.register("wav2lip")
def _build_wav2lip(cfg: Any) -> nn.Module:
    """The Wav2Lip-style speech-to-lip generator (:class:`mumo.models.wav2lip.Wav2LipConfig`)."""
    from mumo.models.wav2lip import Wav2Lip

    return Wav2Lip(cfg=cfg)


@models.register("lip2wav")
def _build_lip2wav(cfg: Any) -> nn.Module:
    """The Lip2Wav-style lip-to-speech model (:class:`mumo.models.lip2wav.Lip2WavConfig`)."""
    from mumo.models.lip2wav import Lip2Wav

    return Lip2Wav(cfg)


def create_model(cfg: Any, **inputs: Any) -> nn.Module:
    """Build the model named by ``cfg.name`` (its config dataclass, beside the model) with freshly initialised
    weights; ``inputs``: what the model needs to know of its data (VQA: ``vocab``, ``num_answers``)."""
    return models.get(cfg.name)(cfg, **inputs)


def list_models() -> list[str]:
    """Names of every registered model."""
    return models.names()
