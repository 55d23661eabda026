"""Questions about one image from a trained question-generation run: ``mumo generate-questions`` and
``mumo.load(RUN).generate(image, ...)``.

Cues a user does not give come from the model: the place from its place head, the tags from its tagger (the image's
``tag_slots`` most likely tags); a caption cannot be predicted, so without one the caption expert is dropped and the
moderator renormalises over the others. Words the run never saw are kept as unknown (``<unk>``) and listed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mumo.data.text import PAD_ID, UNK, Vocab, tokenize
from mumo.errors import ConfigError
from mumo.models.vqg_bmn import VQGBMN, Cues
from mumo.runs import Run
from mumo.tasks.vqg.config import VQGRunConfig
from mumo.tasks.vqg.data import detokenize
from mumo.tasks.vqg.generate import Decoding, check_samples, generate, question_uncertainty
from mumo.tasks.vqg.train import load_vqg_model, read_vocab


@dataclass
class VQGPredictor:
    """A loaded question generator with its vocabulary, places and tag words."""

    model: VQGBMN
    cfg: VQGRunConfig
    vocab: Vocab
    places: list[str]
    tag_words: list[str]
    run_dir: Path

    @classmethod
    def from_run(cls, run_dir: str | Path, *, which: str = "best", device: str = "auto") -> VQGPredictor:
        run = Run(run_dir)
        model = load_vqg_model(run.path, which, device)
        vocab, places, tag_words = read_vocab(run.path)
        return cls(model, run.config(VQGRunConfig), vocab, places, tag_words, run.path)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _words(self, text: str, max_len: int) -> tuple[list[int], list[str]]:
        words = tokenize(text)[:max_len]
        unknown = [w for w in words if w not in self.vocab.index]
        return [self.vocab.index.get(w, self.vocab.index[UNK]) for w in words], unknown

    def generate(
        self,
        image: str | Path | Any,
        *,
        caption: str | None = None,
        tags: list[str] | None = None,
        place: str | None = None,
        samples: int = 5,
        mc: bool = True,
        method: str = "greedy",
        temperature: float = 1.0,
        beam: int = 3,
        seed: int = 0,
    ) -> dict[str, Any]:
        """T questions about ``image`` (a path, PIL image or array), each with its uncertainty; on mumo scenes runs
        also whether the scenes grammar accepts it. Cues not given are predicted (module docstring)."""
        from mumo.data.images import load_image

        check_samples(samples)
        decoding = Decoding(method, temperature, beam, self.cfg.data.max_question_len)
        uses = self.model.uses
        if place is not None and place not in self.places:
            raise ConfigError(f"unknown place {place!r}; this run knows: {', '.join(self.places) or 'none'}")
        t0 = time.perf_counter()
        size = self.cfg.data.image_size
        pixels = torch.from_numpy(load_image(image, size)).permute(2, 0, 1).float().div(255).unsqueeze(0)
        pixels = pixels.to(self.device)  # (1, 3, S, S)
        unknown: list[str] = []
        sources: dict[str, str] = {}
        with torch.no_grad():
            features = self.model.image_features(pixels) if "image" in uses else None  # (1, 2C)
            place_logits, tag_logits = self.model.heads(features) if features is not None else (None, None)
        place_vec = None
        if "place" in uses:
            if place is not None:
                place_vec = torch.zeros(1, len(self.places), device=self.device)
                place_vec[0, self.places.index(place)] = 1.0
                sources["place"] = f"given: {place}"
            elif place_logits is not None:
                probs = torch.softmax(place_logits, 1)  # (1, P)
                place_vec = probs
                sources["place"] = f"predicted: {self.places[int(probs.argmax())]} ({float(probs.max()):.2f})"
            else:
                raise ConfigError("this generator reads a place but not the image: give --place")
        caption_ids = None
        if "caption" in uses:
            ids, unk = self._words(caption, self.cfg.data.max_caption_len) if caption else ([], [])
            unknown += unk
            caption_ids = torch.tensor([ids + [PAD_ID] * (self.cfg.data.max_caption_len - len(ids))],
                                       device=self.device)  # fmt: skip  # (1, Lc); all PAD: no caption
            sources["caption"] = "given" if ids else "none (its expert is dropped)"
        tag_ids = None
        if "tag" in uses:
            slots = self.cfg.model.tag_slots
            if tags:
                words = [w for t in tags for w in tokenize(t)][:slots]
                unknown += [w for w in words if w not in self.vocab.index]
                sources["tag"] = "given: " + ", ".join(words)
            elif not self.tag_words:
                raise ConfigError("this run cannot predict tags (its data set has no image tags): give --tags")
            elif tag_logits is not None:
                top = tag_logits[0].topk(min(slots, len(self.tag_words))).indices.tolist()
                words = [self.tag_words[i] for i in top]
                sources["tag"] = "predicted: " + ", ".join(words)
            else:
                raise ConfigError("this generator reads tags but not the image: give --tags")
            ids = [self.vocab.index.get(w, self.vocab.index[UNK]) for w in words]
            tag_ids = torch.tensor([ids + [PAD_ID] * (slots - len(ids))], device=self.device)  # (1, S)
        cues = Cues(place=place_vec, caption=caption_ids, tags=tag_ids)
        tokens, gates = generate(self.model, features, cues, samples=samples, mc=mc, decoding=decoding, seed=seed)
        questions = []
        for s in range(samples):  # (T, 1, L) -> one question per pass
            u = question_uncertainty(self.model, features, cues, tokens[s], samples=max(samples, 2), seed=seed + 7 + s)
            text = detokenize(tokens[s, 0].tolist(), self.vocab)
            item: dict[str, Any] = {"question": text, **{k: float(v[0]) for k, v in u.items()}}
            if self.cfg.data.name == "scenes":
                from mumo.data.scenes.grammar import parse

                item["valid"] = parse(text) is not None
            questions.append(item)
        return {
            "questions": questions,
            "distinct": len({q["question"] for q in questions}),
            "cues": sources,
            "moderator": dict(zip(self.cfg.model.experts, gates.mean((0, 1)).tolist(), strict=True)),
            "unknown_words": sorted(set(unknown)),
            "samples": samples,
            "inference": "dropout kept on (MC)" if mc else "dropout off (MC-SMN)",
            "seconds": time.perf_counter() - t0,
        }
