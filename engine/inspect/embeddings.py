"""Tokens become vectors: the rows of the embedding tables that a text picks out, and the geometry of those
tables (nearest neighbours by cosine similarity, a 2-D PCA map, position-by-position similarity).

Everything here reads the model's weights; nothing runs the transformer blocks. The first block receives
`wte[id] + wpe[position]` (dropout is off outside training), which is exactly what a Trace records as
`hook_embed`, `hook_pos_embed` and `blocks.0.hook_resid_pre`; tests/test_tokens_page_vectors.py checks this.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model.gpt import GPT
from ..model.tokenizer import Encoding
from ..model.trace import encode_for_model

EPS = 1e-12  # keeps an all-zero row from dividing by zero; its cosine with anything is 0


@dataclass(frozen=True)
class ModelInput:
    """What the first block receives for a text: one row per position the model sees."""
    encoding: Encoding  # ids, display strings and offsets, <|endoftext|> first, cut to the context
    n_dropped: int  # tokens cut from the start of the text because it is longer than the context
    token: torch.Tensor  # [pos, d_model] rows of wte
    position: torch.Tensor  # [pos, d_model] rows of wpe (zeros for a model with rotary positions)
    total: torch.Tensor  # [pos, d_model] their sum: the residual stream entering block 0


def token_table(model: GPT) -> torch.Tensor:
    """The token embedding table, a float32 CPU copy (never a view of the shared model's weights)."""
    return model.token_embedding().detach().float().cpu().clone()  # [vocab, d_model]


def position_table(model: GPT) -> torch.Tensor | None:
    """The position embedding table, or None for a model without one (rotary positions rotate q and k)."""
    wpe = model.position_embedding()
    return None if wpe is None else wpe.detach().float().cpu().clone()  # [block_size, d_model]


@torch.no_grad()
def model_input(model: GPT, tokenizer, text: str, bos: bool = True) -> ModelInput:
    """The embedding rows for `text` as the model would see it (same tokens, start marker and cut as a Trace)."""
    enc, dropped = encode_for_model(tokenizer, text, model.config.block_size, bos)
    ids = torch.tensor(enc.ids, dtype=torch.long)
    tok = model.token_embedding().detach()[ids].float().cpu()  # [pos, d_model]
    wpe = model.position_embedding()  # a rotary model has none: its positions enter inside attention
    pos = torch.zeros_like(tok) if wpe is None else wpe.detach()[: len(enc.ids)].float().cpu()  # [pos, d_model]
    return ModelInput(enc, dropped, tok, pos, tok + pos)


def cosine_matrix(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Cosine similarity of every row of `a` with every row of `b` (default: `a`). [n, d], [m, d] -> [n, m]"""
    a = a.float()
    b = a if b is None else b.float()
    an = a / a.norm(dim=-1, keepdim=True).clamp_min(EPS)
    bn = b / b.norm(dim=-1, keepdim=True).clamp_min(EPS)
    return an @ bn.T


def nearest_neighbours(table: torch.Tensor, token_id: int, k: int = 10,
                       exclude: tuple[int, ...] = ()) -> list[tuple[int, float]]:
    """The `k` rows of `table` most cosine-similar to row `token_id` (itself left out), most similar first.

    `exclude` leaves out other ids too (e.g. special tokens). Returns (id, cosine) pairs.
    """
    if not 0 <= token_id < table.shape[0]:
        raise ValueError(f"token id {token_id} is outside the table of {table.shape[0]} rows")
    sims = cosine_matrix(table[token_id:token_id + 1], table)[0]  # [vocab]
    sims[token_id] = -float("inf")
    for i in exclude:
        if 0 <= i < sims.shape[0]:
            sims[i] = -float("inf")
    k = max(0, min(k, int(torch.isfinite(sims).sum())))
    top = torch.topk(sims, k)
    return [(int(i), float(s)) for s, i in zip(top.values, top.indices)]


@dataclass(frozen=True)
class PCA2D:
    coords: torch.Tensor  # [rows, 2] each row projected onto the first two principal axes
    axes: torch.Tensor  # [2, d] the principal axes (unit vectors)
    explained: tuple[float, float]  # fraction of the total variance along each axis


def pca_2d(table: torch.Tensor, chunk: int = 8192) -> PCA2D:
    """Project the rows of `table` onto its two main directions of variation.

    The axes are the top eigenvectors of the rows' covariance, summed in float64 a chunk of rows at a time: the
    same axes an SVD of the centred table gives, without copying a 150,000-row vocabulary into float64 at once.
    Signs are fixed so the largest loading of each axis is positive: the map does not flip between runs.
    """
    rows, d = table.shape
    mean = torch.zeros(d, dtype=torch.float64)
    for start in range(0, rows, chunk):
        mean += table[start:start + chunk].double().sum(dim=0)
    mean /= max(rows, 1)
    cov = torch.zeros(d, d, dtype=torch.float64)
    for start in range(0, rows, chunk):
        xc = table[start:start + chunk].double() - mean
        cov += xc.T @ xc
    var, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues, eigenvectors in the columns
    order = var.flip(0).clamp_min(0)
    n = min(2, d)
    axes = vecs.flip(1).T[:n]  # [n, d] the top directions
    flip = torch.sign(axes.gather(1, axes.abs().argmax(dim=1, keepdim=True)))  # [n, 1]
    axes = axes * torch.where(flip == 0, torch.ones_like(flip), flip)
    if n < 2:  # a one-dimensional table: the second axis carries nothing
        axes = torch.cat([axes, torch.zeros(2 - n, d, dtype=axes.dtype)])
    total = float(order.sum()) or 1.0
    explained = tuple(float(v) / total for v in order[:2]) + (0.0,) * (2 - n)
    coords = torch.cat([(table[s:s + chunk].double() - mean) @ axes.T for s in range(0, rows, chunk)]) \
        if rows else torch.zeros(0, 2, dtype=torch.float64)
    return PCA2D(coords.float(), axes.float(), explained)


def sample_positions(n: int, limit: int) -> list[int]:
    """At most `limit` evenly spread positions out of `n`, always including the first and the last."""
    if n <= limit:
        return list(range(n))
    if limit < 2:
        return [0]
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})
