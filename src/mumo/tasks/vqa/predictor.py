"""A trained VQA run answering questions about images, with its uncertainty (:func:`mumo.serve.load` builds it)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mumo.data.images import ImageInput, load_image
from mumo.data.text import Vocab, check_question
from mumo.errors import ConfigError, MumoError, NoOODCheckWarning
from mumo.explain.hooks import capture
from mumo.runs import Run
from mumo.tasks.vqa.config import RunConfig
from mumo.tasks.vqa.density import RunDensity, load_run_density
from mumo.tasks.vqa.model import load_artifacts, load_model
from mumo.tasks.vqa.ood import OODCheck, load_ood_check, pooled_image_features
from mumo.tasks.vqa.predictive import members, predictive_probs
from mumo.tasks.vqa.question_bank import (
    DEFAULT_BANK_SIZE,
    QuestionBank,
    bank_mutual_information,
    question_bank,
    saved_question_bank,
)
from mumo.tasks.vqa.temperature import load_run_temperature
from mumo.types import DONT_KNOW, AnswerScore, Prediction, Uncertainty, VQABatch
from mumo.uncertainty.mc_dropout import (
    num_sampled_dropout,
    resolve_scope,
)
from mumo.uncertainty.scores import uncertainty_scores


class VQAPredictor:
    """A trained VQA model with its preprocessing. Build it with :func:`mumo.load`."""

    def __init__(
        self,
        model: nn.Module,
        cfg: RunConfig,
        vocab: Vocab,
        answers: list[str],
        density: RunDensity | None = None,
        temperature: float = 1.0,
        run: Run | None = None,
        ood: OODCheck | None = None,
    ) -> None:
        # ``run``: the (first) run the model comes from; its saved question order draws question banks
        # ``model``: one model, or a DeepEnsemble answering together (the density is its first member's)
        self.answerer = model
        self.models = members(model)
        self.model = self.models[0]
        self.cfg, self.vocab, self.answers, self.density = cfg, vocab, answers, density
        self.temperature = temperature  # divides the answer logits (`mumo fit-temperature RUN`; 1 = none)
        self.run = run
        self.ood = ood  # the default out-of-distribution check (of the first run), None for runs trained before it
        self._banks: dict[int, QuestionBank] = {}

    @classmethod
    def from_run(
        cls, run_dir: str | Path | Sequence[str | Path], which: str = "best", device: str = "auto"
    ) -> VQAPredictor:
        runs = [Path(r) for r in run_dir] if isinstance(run_dir, (list, tuple)) else [Path(run_dir)]
        if len(runs) > 1:
            from mumo.tasks.vqa.ensemble import load_ensemble

            model: nn.Module = load_ensemble(runs, which=which, device=device, same_split=False)
        else:
            model = load_model(runs[0], which, device)
        art = load_artifacts(runs[0])
        cfg = Run(runs[0]).config(RunConfig)
        temperature = load_run_temperature(runs[0]) or 1.0
        density = load_run_density(runs[0])
        ood = load_ood_check(runs[0])
        if ood is None:  # said once, when the run is loaded
            warnings.warn(
                f"{runs[0]} has no out-of-distribution check (it was trained before mumo fitted one), so answers "
                f"about images unlike its training images are not refused; fit it with `mumo fit-density {runs[0]}`",
                NoOODCheckWarning,
                stacklevel=3,  # the caller of mumo.load
            )
        return cls(model, cfg, Vocab(art["vocab"]), art["answers"], density, temperature, Run(runs[0]), ood)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, image: ImageInput, question: str | bytes) -> VQABatch:
        """Preprocess one image-question pair into a batch of one."""
        return self.encode_many([image], [question])

    def encode_many(self, images: Sequence[ImageInput], questions: Sequence[str | bytes]) -> VQABatch:
        """Preprocess B image-question pairs into one batch: question b asks about image b."""
        if len(images) != len(questions):
            raise MumoError(f"{len(images)} images but {len(questions)} questions: give one question per image")
        texts = [check_question(q) for q in questions]
        pixels = np.stack([load_image(im, size=self.cfg.data.image_size) for im in images])  # (B, H, W, 3) uint8
        batch = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255.0)  # (B, 3, H, W)
        tokens = self.vocab.encode_batch(texts, self.cfg.data.max_question_len)  # (B, L)
        return VQABatch(images=batch, tokens=tokens, image_index=torch.arange(len(texts))).to(self.device)

    def question_bank(self, size: int = DEFAULT_BANK_SIZE) -> QuestionBank:
        """``size`` questions drawn from the run's training split: read from the run's saved question order
        (``question_bank.json``), or, for runs trained before it was saved, drawn from the training split (loaded
        on first use); then kept."""
        if size < 1:
            raise MumoError(f"the question bank needs at least 1 question, not {size}")
        if size not in self._banks:
            bank = None if self.run is None else saved_question_bank(self.run, size, seed=self.cfg.train.seed)
            if bank is None:
                from mumo.tasks.vqa.data import load_data

                bank = question_bank(load_data(self.cfg).train, size, seed=self.cfg.train.seed)
            self._banks[size] = bank
        return self._banks[size]

    def predict(
        self,
        image: ImageInput,
        question: str | bytes,
        *,
        top_k: int = 3,
        mc_samples: int | None = None,
        mc_scope: str = "all",
        abstain: float | None = None,
        abstain_on: str = "predictive_entropy",
        image_uncertainty: bool = False,
        question_bank_size: int = DEFAULT_BANK_SIZE,
        temperature: float | None = None,
        seed: int = 0,
        ood_check: bool = True,
    ) -> Prediction:
        """Answer ``question`` about ``image`` (a path, PIL image or array).

        Args:
            top_k: how many answers to return with their probabilities.
            mc_samples: T MC-dropout passes for epistemic uncertainty; None = one deterministic pass.
            mc_scope: which dropout modules sample: ``all``, or ``attflat`` (MCAN: only the dropout inside the two
                AttFlat scoring MLPs; cheaper, but a partial approximation whose mutual information is not comparable
                with ``all``'s; ``head`` is its deprecated alias). The result reports the scope and the number of
                dropout modules that sampled.
            abstain: answer "don't know" when the ``abstain_on`` score exceeds this threshold (nats).
            abstain_on: ``predictive_entropy`` (total), ``mutual_information`` (epistemic),
                ``expected_entropy`` (aleatoric), ``variation_ratio``, or ``feature_density`` (epistemic:
                distance from the training data; needs ``mumo fit-density RUN``) or ``image_mutual_information``
                (epistemic, about the image; implies ``image_uncertainty``).
            image_uncertainty: also ask ``question_bank_size`` training questions about the image and
                report the mean mutual information of their answers (needs ``mc_samples``): high when the
                model does not know the image, even if this question's answer is confident.
            temperature: divides the answer logits; None = the run's fitted temperature (1 without one).
            seed: seeds the dropout masks and logit noise.
            ood_check: abstain when the run's out-of-distribution check finds the image unlike the training
                images (the default; the check is reported either way). Runs trained before the check have none.
        """
        return self.predict_many(
            [image], [question], top_k=top_k, mc_samples=mc_samples, mc_scope=mc_scope, abstain=abstain,
            abstain_on=abstain_on, image_uncertainty=image_uncertainty, question_bank_size=question_bank_size,
            temperature=temperature, seed=seed, ood_check=ood_check,
        )[0]  # fmt: skip

    @torch.no_grad()
    def predict_many(
        self,
        images: Sequence[ImageInput],
        questions: Sequence[str | bytes],
        *,
        top_k: int = 3,
        mc_samples: int | None = None,
        mc_scope: str = "all",
        abstain: float | None = None,
        abstain_on: str = "predictive_entropy",
        image_uncertainty: bool = False,
        question_bank_size: int = DEFAULT_BANK_SIZE,
        temperature: float | None = None,
        seed: int = 0,
        ood_check: bool = True,
    ) -> list[Prediction]:
        """Answer B questions, question b about image b, with one forward pass over the batch (one MC pass of T
        samples with ``mc_samples``): the same predictions as B calls of :meth:`predict` with the same options.

        Item b draws the dropout masks and logit noise that :meth:`predict` alone would draw with ``seed`` (each
        row has its own per-sample generators), so batching changes no answer and no uncertainty; probabilities
        agree to float rounding (about 1e-6). Only ``image_uncertainty``'s question bank runs one image at a time.
        """
        if len(images) != len(questions):
            raise MumoError(f"{len(images)} images but {len(questions)} questions: give one question per image")
        if not images:
            return []
        if top_k < 1:
            raise MumoError(f"top_k must be >= 1, not {top_k}")
        if abstain is not None and not math.isfinite(abstain):
            raise ConfigError(f"abstain must be a finite threshold, not {abstain}")
        if abstain_on not in ABSTAIN_SCORES:
            raise MumoError(f"abstain_on must be one of {', '.join(ABSTAIN_SCORES)}, not {abstain_on!r}")
        if abstain_on == "feature_density" and self.density is None:
            raise MumoError("abstain_on='feature_density' needs a fitted density: run `mumo fit-density RUN` first")
        image_uncertainty = image_uncertainty or abstain_on == "image_mutual_information"
        if image_uncertainty and mc_samples is None and len(self.models) < 2:
            raise MumoError(
                "image uncertainty is an MC-dropout (or ensemble) score: give mc_samples (T passes), e.g. 20"
            )
        if mc_samples is not None:
            mc_scope = resolve_scope(self.model, mc_scope)
            sampled = num_sampled_dropout(self.model, mc_scope)  # per member; MumoError for a scope not offered
        batch = self.encode_many(images, questions)
        # a deterministic pass also yields the density and image features; MC passes need one more, dropout off
        with ExitStack() as stack:
            enter = stack.enter_context
            captured = enter(capture(self.model.density_layer())) if self.density is not None else None
            image_feats = enter(capture(self.model.image_feature_layer())) if self.ood is not None else None
            t = self.temperature if temperature is None else temperature
            probs = self._batch_probs(
                batch, mc_samples=mc_samples, mc_scope=mc_scope, seed=seed, temperature=t
            )  # (T, B, C); (M·T, B, C) for M ensemble members
            if (self.density is not None or self.ood is not None) and mc_samples is not None:
                self.model.eval()
                self.model(batch)
        scores = uncertainty_scores(probs)  # name -> (B,)
        if self.density is not None:  # from the last, deterministic pass
            scores["feature_density"] = self.density.score(captured.last.cpu())  # (B,)
            density_quantiles = self.density.quantile(scores["feature_density"])  # (B,)
        ood_scores = None if self.ood is None else self.ood.score(pooled_image_features(image_feats.last))  # (B,)
        preds = []
        for b, question in enumerate(questions):
            mean = probs[:, b].mean(0)  # (C,)
            values, indices = mean.topk(min(top_k, mean.numel()))
            top = [
                AnswerScore(self.answers[i], float(p)) for p, i in zip(values.tolist(), indices.tolist(), strict=True)
            ]
            item = {k: float(v[b]) for k, v in scores.items()}
            unc = Uncertainty(
                total=item["predictive_entropy"], aleatoric=item["expected_entropy"],
                epistemic=item["mutual_information"], variation_ratio=item["variation_ratio"],
                mc_samples=mc_samples or 0, mc_scope=mc_scope if mc_samples else None,
                mc_dropout_modules=sampled if mc_samples else 0, ensemble_members=len(self.models), temperature=t,
            )  # fmt: skip
            if self.density is not None:
                unc.feature_density = item["feature_density"]
                unc.feature_density_quantile = float(density_quantiles[b])
            if image_uncertainty:
                bank = self.question_bank(question_bank_size)
                mi = bank_mutual_information(
                    self.answerer, batch.images[b : b + 1], bank, mc_samples=mc_samples, mc_scope=mc_scope, seed=seed
                )
                item["image_mutual_information"] = unc.image_epistemic = float(mi.mean())
                unc.question_bank_size = len(bank)
            text = question.decode("utf-8") if isinstance(question, bytes) else question
            pred = Prediction(text, top[0].answer, top[0].probability, top, unc, best_guess=top[0].answer)
            preds.append(pred)
            if ood_scores is not None:  # the image features no question touched
                o = pred.out_of_distribution = self.ood.report(float(ood_scores[b]))
                if ood_check and o["out_of_distribution"]:
                    pred.answer, pred.abstained = DONT_KNOW, True
                    pred.abstain_reason = (
                        f"out of distribution: the image is {o['score']:.4f} from its nearest training images, "
                        f"beyond the threshold {o['threshold']:.4f} that at most {o['alpha']:.1%} of "
                        "in-distribution images pass"
                    )
                    continue
            if abstain is not None and item[abstain_on] > abstain:
                pred.answer, pred.abstained = DONT_KNOW, True
                pred.abstain_reason = f"{abstain_on} {item[abstain_on]:.4f} > threshold {abstain:g}"
        return preds

    def _batch_probs(
        self, batch: VQABatch, *, mc_samples: int | None, mc_scope: str, seed: int, temperature: float
    ) -> torch.Tensor:
        """Answer probabilities (T, B, C) (member-major (M·T, B, C) for an ensemble) whose row b equals
        :func:`predictive_probs` of item b alone: the same dropout masks and logit noise, drawn per row."""
        return predictive_probs(self.answerer, batch, mc_samples=mc_samples, mc_scope=mc_scope, seed=seed,
                                temperature=temperature, independent_rows=True)  # fmt: skip


ABSTAIN_SCORES = (
    "predictive_entropy", "mutual_information", "expected_entropy", "variation_ratio", "feature_density",
    "image_mutual_information",
)  # fmt: skip
