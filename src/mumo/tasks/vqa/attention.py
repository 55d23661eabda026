"""Training a VQA model's attention with its explanation (``objective.attention_loss``; reference §4.2-4.3).

Per batch, one forward pass with the image features V (N, R, K) entering the co-attention captured:

1. the VQA loss L_vqa (as without supervision);
2. the model's image attention α (N, R): AttFlat's weights, mean over glimpses;
3. a target map over the cells, from a gradient w.r.t. V (Grad-CAM, :mod:`mumo.explain.gradcam`;
   V = the non-negative conv features, one copy per question: ``MCANVQA.explain_layer``),
   detached and normalised to a distribution e:
   - ``mse``, ``aan``, ``paan``: Grad-CAM of the ground-truth answer's score Σ_c a_c z_c (soft targets
     a, logits z; the explanation "with the ground-truth answer" of the two-player game). The logit, as
     in Grad-CAM, not the log-likelihood: that saturates once the answer is right and leaves noise;
   - ``gca``: the certainty map, Grad-CAM of −L_unc, the cells whose features lower the uncertainty
     loss: L_unc = U-CAM's L_U (reference §3.4) for a model with ``model.aleatoric=ucam``, else the soft
     cross-entropy plus the predictive entropy H[p];
4. the attention term, weighted by ``objective.attention_weight`` and summed over questions:
   - ``mse`` and ``gca``: Σ_r (α_r − e_r)²;
   - ``aan``: the generator loss −log D(α) of a map discriminator, plus D's own loss;
   - ``paan``: the same with R per-cell discriminators over the weighted features m_r · v_r;
5. for ``gca`` also ``objective.uncertainty_weight`` · Σ_n H[p_n] (minimise the predictive uncertainty).

``masks`` replaces steps 3-4 with ground truth (data sets with object masks: Sort-of-CLEVR, mumo scenes): the target of
AttFlat glimpse g is the masks of the objects reasoning step g looks at (the asked-about object, the objects
the answer is read from, the objects counted: :func:`mumo.data.vqa.sort_of_clevr.attention_objects`; in mumo scenes
the first and last objects the question's program looks at: :func:`mumo.data.scenes.program.reasoning_steps`), pooled to
the grid with every object weighing the same, and normalised; steps that look at nothing add nothing; with
one glimpse, the union of the steps. The term is Σ_g KL(t_g || α_g), weighted by
``objective.attention_weight``. Only training reads the masks: the model answers from the image and question alone.

:class:`AttentionObjective` holds the discriminator (for ``aan`` / ``paan``) and computes the whole loss from the
VQA model it is given; the loop trains both with one optimiser and one backward pass, and checkpoints the VQA
model as ``model.safetensors`` and the discriminator beside it as ``attention.safetensors``, so inference loads
the bare model and never builds this objective.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from accelerate.utils import extract_model_from_parallel
from torch import nn

from mumo.data.vqa.masks import question_step_maps
from mumo.errors import ConfigError
from mumo.explain.attention_game import (
    MapDiscriminator,
    PixelDiscriminator,
    discriminator_loss,
    explanation_distribution,
    generator_loss,
    kl_attention_loss,
    mse_attention_loss,
)
from mumo.explain.gradcam import cam_of
from mumo.explain.hooks import capture
from mumo.tasks.vqa.config import RunConfig
from mumo.tasks.vqa.loss import loss_from_output
from mumo.types import VQABatch
from mumo.uncertainty.losses import soft_cross_entropy, ucam_aleatoric_ce


class AttentionObjective(nn.Module):
    """The VQA loss plus the attention term, and (for ``aan`` / ``paan``) the attention discriminator.

    ``forward(vqa, batch)`` returns ``(loss, logs)`` for the VQA model ``vqa`` (the loss is computed inside
    ``forward`` so that DDP sees the discriminator's parameters used).
    """

    def __init__(self, cfg: RunConfig, *, cells: int, features: int) -> None:
        super().__init__()
        self.cfg = cfg
        mode = cfg.objective.attention_loss
        self.discriminator: nn.Module | None = None
        if mode == "aan":
            self.discriminator = MapDiscriminator(cells=cells)
        elif mode == "paan":
            self.discriminator = PixelDiscriminator(cells=cells, features=features)

    def forward(self, vqa: nn.Module, batch: VQABatch) -> tuple[torch.Tensor, dict[str, float]]:
        if self.cfg.objective.attention_loss == "masks":
            return self._mask_loss(vqa, batch)
        return self._loss(vqa, batch)

    def _loss(self, vqa: nn.Module, batch: VQABatch) -> tuple[torch.Tensor, dict[str, float]]:
        m, t = self.cfg.model, self.cfg.objective
        # the layer is declared by the bare model; the forward goes through ``vqa`` (distributed or not)
        with capture(extract_model_from_parallel(vqa).explain_layer()) as cap:
            out = vqa(batch, output_attentions=True)
        features = cap.last  # (N, R, K)
        vqa_loss, logs = loss_from_output(out, batch, t.loss_reduction, m.aleatoric, m.aleatoric_samples, t.loss)
        attention = out.attentions["image_flat"].mean(-1)  # (N, R)
        n = attention.shape[0]
        scale = 1.0 if t.loss_reduction == "sum" else 1.0 / n  # per-question terms are summed like the VQA loss

        log_p = F.log_softmax(out.logits, -1)  # (N, C)
        entropy = -(log_p.exp() * log_p).sum(-1)  # (N,)
        if t.attention_loss == "gca":
            if out.log_variance is not None and m.aleatoric == "ucam":
                terms = ucam_aleatoric_ce(out.logits, out.log_variance.exp(), batch.targets,
                                          num_samples=m.aleatoric_samples)  # fmt: skip
                uncertainty = terms.total * n
            else:
                uncertainty = (soft_cross_entropy(out.logits, batch.targets) + entropy).sum()
            score = -uncertainty  # Grad-CAM of −L_unc: cells that lower the uncertainty loss
        else:
            score = (batch.targets * out.logits).sum()  # the ground-truth answers' scores (soft-target weighted)
        cam = cam_of(score, features, relu=True, retain_graph=True)  # (N, R), detached
        target, valid = explanation_distribution(cam)  # (N, R), (N,)

        if t.attention_loss in ("mse", "gca"):
            term = mse_attention_loss(attention, target, valid).sum()
            total = vqa_loss + t.attention_weight * scale * term
            if t.attention_loss == "gca":
                total = total + t.uncertainty_weight * scale * entropy.sum()
            logs.update(attention_term=float(term.detach()) / n)
            return total, logs

        assert self.discriminator is not None
        keep = valid.nonzero().squeeze(-1)  # rows with an explanation
        real, fake = target[keep], attention[keep]  # (n', R)
        if t.attention_loss == "paan":
            v = features.detach()[keep]  # (n', R, K)
            real, fake = real[..., None] * v, fake[..., None] * v  # (n', R, K) map-weighted cell features
        if real.shape[0] == 0:
            return vqa_loss, logs
        d_loss = discriminator_loss(self.discriminator, real, fake)
        g_loss = generator_loss(self.discriminator, fake)
        total = vqa_loss + t.attention_weight * scale * n * g_loss + d_loss
        logs.update(discriminator_loss=float(d_loss.detach()), generator_loss=float(g_loss.detach()))
        return total, logs

    def _mask_loss(self, vqa: nn.Module, batch: VQABatch) -> tuple[torch.Tensor, dict[str, float]]:
        m, t = self.cfg.model, self.cfg.objective
        if batch.object_masks is None or batch.question_objects is None:
            raise ConfigError(
                "objective.attention_loss=masks needs a data set with object masks (data.name=sort-of-clevr or scenes)"
            )
        out = vqa(batch, output_attentions=True)
        if out.grid is None:
            raise ConfigError("objective.attention_loss=masks needs grid image features (model.image_encoder=cnn)")
        vqa_loss, logs = loss_from_output(out, batch, t.loss_reduction, m.aleatoric, m.aleatoric_samples, t.loss)
        attention = out.attentions["image_flat"]  # (N, R, glimpses)
        objects = batch.question_objects  # (N, G, O)
        if attention.shape[-1] == 1:
            objects = objects.amax(1, keepdim=True)  # (N, 1, O): one glimpse looks at every step's objects
        steps = question_step_maps(batch.object_masks, batch.image_index, objects, out.grid)  # (N, G, R)
        term = attention.new_zeros(())
        for g in range(min(attention.shape[-1], steps.shape[1])):
            target, valid = explanation_distribution(steps[:, g])  # (N, R), (N,)
            term = term + kl_attention_loss(attention[..., g], target, valid).sum()
        n = attention.shape[0]
        scale = 1.0 if t.loss_reduction == "sum" else 1.0 / n
        logs.update(attention_term=float(term.detach()) / n)
        return vqa_loss + t.attention_weight * scale * term, logs


def feature_shape(vqa: nn.Module, batch: VQABatch) -> tuple[int, int]:
    """(cells R, feature size K) of the model's explanation layer, from one forward pass."""
    with torch.no_grad(), capture(vqa.explain_layer()) as cap:
        vqa(batch)
    return int(cap.last.shape[1]), int(cap.last.shape[2])
