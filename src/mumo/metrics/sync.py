"""Lip-sync scores over per-window embeddings: LSE-D, LSE-C and the AV offset (reference §6.6).

Inputs are one embedding per 5-frame window of one video: ``video_emb`` (T, E) from the lip stream and
``audio_emb`` (T, E) from the audio stream, window t of both covering the same 0.2 s. The reference
(Wav2Lip's ``SyncNetInstance_calc_scores.py``, after joonson/syncnet_python) uses the original SyncNet's
un-normalised 1024-d features; these functions take any embeddings, e.g. ``SyncExpert.embed_faces`` /
``embed_audio``.

Offset convention (mumo). For offset o in -max_offset..max_offset, ``dists[t, o + max_offset]`` compares
video window t with audio window t + o; audio windows outside 0..T-1 are zero vectors (the reference
zero-pads the audio features at both ends, and these padded comparisons count in the means).
**A positive offset means the audio lags the video**: the sound of video window t arrives o windows
(frames) later, as when ``audio_emb[t] = video_emb[t - o]``; delay the video by o frames (or advance
the audio) to bring them into sync. The reference prints ``AV offset = max_offset - argmin index``, which
is the *negative* of mumo's ``offset_frames``; ``sync_scores`` returns both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mumo.errors import MumoError


def _check_embeddings(video_emb: torch.Tensor, audio_emb: torch.Tensor, max_offset: int) -> None:
    if video_emb.ndim != 2 or audio_emb.shape != video_emb.shape:
        raise MumoError(
            f"video_emb and audio_emb must both be (T, E), got {tuple(video_emb.shape)} and {tuple(audio_emb.shape)}"
        )
    if video_emb.shape[0] == 0:
        raise MumoError("no windows (T = 0)")
    if not isinstance(max_offset, int) or max_offset < 0:
        raise MumoError(f"max_offset must be an integer >= 0, not {max_offset!r}")


def _shifted_audio(audio_emb: torch.Tensor, max_offset: int) -> torch.Tensor:
    """(T, E) -> (T, 2 * max_offset + 1, E): row t, column j holds audio window t + j - max_offset (or zeros)."""
    t = audio_emb.shape[0]
    padded = F.pad(audio_emb, (0, 0, max_offset, max_offset))  # (T + 2m, E)
    rows = torch.arange(t, device=audio_emb.device)[:, None]  # (T, 1)
    index = rows + torch.arange(2 * max_offset + 1, device=audio_emb.device)[None, :]  # (T, W)
    return padded[index]  # (T, W, E)


def offset_distances(video_emb: torch.Tensor, audio_emb: torch.Tensor, max_offset: int = 15) -> torch.Tensor:
    """Euclidean distance between each video window and the audio windows around it.

    As the reference's ``calc_pdist``: ``torch.nn.functional.pairwise_distance`` (which adds eps = 1e-6 to
    the difference) against zero-padded audio.

    Args:
        video_emb: (T, E) lip-stream embeddings, one per window.
        audio_emb: (T, E) audio-stream embeddings of the same windows.
        max_offset: largest offset searched in windows (frames); the reference uses 15.

    Returns:
        (T, 2 * max_offset + 1) distances; column j is offset o = j - max_offset, comparing video window t
        with audio window t + o (positive o: audio lags the video).
    """
    _check_embeddings(video_emb, audio_emb, max_offset)
    shifted = _shifted_audio(audio_emb, max_offset)  # (T, W, E)
    return F.pairwise_distance(video_emb[:, None, :].expand_as(shifted), shifted)  # (T, W)


def cosine_offset_scores(video_emb: torch.Tensor, audio_emb: torch.Tensor, max_offset: int = 15) -> torch.Tensor:
    """Cosine similarity (higher = more in sync) between each video window and the audio windows around it.

    The sync expert's own score: for its unit-norm non-negative embeddings, values lie in [0, 1]. Padded
    (out-of-range) audio windows score 0.

    Args:
        video_emb: (T, E) lip-stream embeddings.
        audio_emb: (T, E) audio-stream embeddings.
        max_offset: largest offset searched, in windows.

    Returns:
        (T, 2 * max_offset + 1) similarities, columns as in :func:`offset_distances`.
    """
    _check_embeddings(video_emb, audio_emb, max_offset)
    shifted = _shifted_audio(audio_emb, max_offset)  # (T, W, E)
    return F.cosine_similarity(video_emb[:, None, :], shifted, dim=-1)  # (T, W)


def _check_table(table: torch.Tensor) -> int:
    if table.ndim != 2 or table.shape[0] == 0 or table.shape[1] % 2 == 0:
        raise MumoError(f"expected (T, 2 * max_offset + 1) with T >= 1, got {tuple(table.shape)}")
    if not torch.isfinite(table).all():
        raise MumoError("offset table holds NaN or infinite values")
    return (table.shape[1] - 1) // 2


def sync_scores(dists: torch.Tensor) -> dict:
    """LSE-D, LSE-C and the AV offset of one video from its offset distances.

    ``mdist[o]`` = mean over windows of ``dists[:, o]``; LSE-D = min_o mdist (lower is better);
    LSE-C = median_o mdist - min_o mdist (higher is better; ``torch.median``, the lower middle value for an
    even number of offsets, as the reference). Ties in the minimum go to the first (most negative) offset.

    Args:
        dists: (T, 2 * max_offset + 1) from :func:`offset_distances`.

    Returns:
        ``offset_frames`` (int): the argmin offset in mumo's convention (positive: audio lags the video);
        ``reference_offset`` (int): the reference's ``max_offset - argmin index`` = ``-offset_frames``;
        ``lse_d`` and ``lse_c`` (float); ``mean_distance_per_offset``: (2 * max_offset + 1,) mdist.
    """
    max_offset = _check_table(dists)
    mdist = dists.detach().mean(dim=0)  # (W,) in the input dtype, as the reference
    min_value, min_index = torch.min(mdist, dim=0)
    offset = int(min_index) - max_offset
    return {
        "offset_frames": offset,
        "reference_offset": -offset,
        "lse_d": float(min_value),
        "lse_c": float(torch.median(mdist) - min_value),
        "mean_distance_per_offset": mdist,
    }


def cosine_sync_scores(similarities: torch.Tensor) -> dict:
    """Offset and confidence from cosine similarities (higher is better), mirroring :func:`sync_scores`.

    Args:
        similarities: (T, 2 * max_offset + 1) from :func:`cosine_offset_scores`.

    Returns:
        ``offset_frames`` (int, argmax offset, mumo's convention); ``best_score`` (float, max over offsets of
        the mean similarity); ``confidence`` (float, best_score - median); ``mean_score_per_offset`` (W,).
    """
    max_offset = _check_table(similarities)
    msim = similarities.detach().mean(dim=0)  # (W,)
    max_value, max_index = torch.max(msim, dim=0)
    return {
        "offset_frames": int(max_index) - max_offset,
        "best_score": float(max_value),
        "confidence": float(max_value - torch.median(msim)),
        "mean_score_per_offset": msim,
    }
