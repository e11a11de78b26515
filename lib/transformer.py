"""The exercise's Transformer: German (encoder) to English (decoder), post-norm, learned positional encodings.

Parameter creation order follows the exercise, so seeded one-hot calls ``model(x1, x2)`` give its numbers. On top:
token-id inputs (an embedding lookup into the same weights), sequences shorter than ``max_len``, key-padding masks,
dropout, and cached incremental decoding (see ``TransformerModel.encode`` / ``decode_step``).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention, followed by a residual connection to the query and a LayerNorm.

    Projections multiply from the right (``query @ W_query``); head h uses columns h*d_head:(h+1)*d_head.
    """

    def __init__(self, num_heads, embed_dim, dropout=0.0):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.embed_dim = embed_dim
        self.dropout = dropout
        self.W_query = nn.Parameter(torch.normal(0.0, 1e-2, (embed_dim, embed_dim)))
        self.W_key = nn.Parameter(torch.normal(0.0, 1e-2, (embed_dim, embed_dim)))
        self.W_value = nn.Parameter(torch.normal(0.0, 1e-2, (embed_dim, embed_dim)))
        self.W_output = nn.Parameter(torch.normal(0.0, 1e-2, (embed_dim, embed_dim)))
        self.layer_norm = nn.LayerNorm(embed_dim)

    def split_heads(self, x):
        """(batch, length, embed_dim) -> (batch, num_heads, length, d_head)."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, -1).transpose(1, 2)

    def project_keys_values(self, key, value):
        """Projected keys and values split into heads, each (batch, num_heads, key_len, d_head): what a cache holds."""
        return self.split_heads(key @ self.W_key), self.split_heads(value @ self.W_value)

    def forward(self, query, key, value, mask=False, key_padding_mask=None, cache=None, need_weights=True):
        """query: (batch, query_len, embed_dim); key, value: (batch, key_len, embed_dim).

        mask: True for causal attention (query i sees keys <= i, counted from the end of the cached keys).
        key_padding_mask: optional bool (batch, key_len), True where the key is padding and must not be attended.
        cache: optional dict for incremental decoding. With ``cache["static"]`` true it holds the projected keys and
        values of a fixed memory (cross-attention; computed on first use); otherwise new keys and values are appended
        to ``cache["k"]``, ``cache["v"]`` (self-attention) and attention covers all of them.
        need_weights: False skips returning weights and uses torch's fused attention kernel (training).
        Returns (output (batch, query_len, embed_dim), weights (num_heads, batch, query_len, key_len) or None).
        """
        q = self.split_heads(query @ self.W_query)
        if cache is not None and cache.get("static") and "k" in cache:
            k, v = cache["k"], cache["v"]
        else:
            k, v = self.project_keys_values(key, value)
            if cache is not None:
                if not cache.get("static") and "k" in cache:
                    k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
                cache["k"], cache["v"] = k, v
        allowed = self._allowed(q.shape[2], k.shape[2], mask, key_padding_mask, q.device)
        dropout = self.dropout if self.training else 0.0
        if need_weights:
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
            if allowed is not None:
                scores = scores.masked_fill(~allowed, float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            heads = F.dropout(weights, dropout, training=True) @ v if dropout > 0 else weights @ v
            weights = weights.transpose(0, 1)
        else:
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
            weights = None
        batch, _, query_len, _ = heads.shape
        output = heads.transpose(1, 2).reshape(batch, query_len, self.embed_dim) @ self.W_output
        if dropout > 0:
            output = F.dropout(output, dropout, training=True)
        return self.layer_norm(output + query), weights

    @staticmethod
    def _allowed(query_len, key_len, causal, key_padding_mask, device):
        """Bool mask broadcastable to (batch, heads, query_len, key_len), True where attention is allowed; or None."""
        allowed = None
        if causal:
            offset = key_len - query_len  # earlier positions already in a cache
            positions = torch.arange(query_len, device=device)[:, None] + offset
            allowed = torch.arange(key_len, device=device)[None, :] <= positions
        if key_padding_mask is not None:
            keep = ~key_padding_mask[:, None, None, :]
            allowed = keep if allowed is None else allowed & keep
        return allowed


class TransformerModel(nn.Module):
    """German-to-English Transformer with the exercise's layout (see INTERFACE.md).

    Inputs may be one-hot floats (batch, length, vocab) as in the exercise, or token ids (batch, length).
    ``dropout`` (default 0, the exercise's behaviour) applies to embeddings, attention and feed-forward outputs.
    """

    def __init__(self, en_vocab_size, de_vocab_size, max_len=20, embed_dim=64, enc_layers=6, dec_layers=6,
                 num_heads=4, dropout=0.0):
        super().__init__()
        self.en_vocab_size = en_vocab_size
        self.de_vocab_size = de_vocab_size
        self.max_len = max_len
        self.embed_dim = embed_dim
        self.enc_layers = enc_layers
        self.dec_layers = dec_layers
        self.num_heads = num_heads
        self.dropout = dropout

        self.enc_input_dense = nn.Linear(de_vocab_size, embed_dim)
        self.enc_pos_enc = nn.Parameter(torch.zeros(1, max_len, embed_dim))
        self.enc_increase_hidden = nn.ModuleList([nn.Linear(embed_dim, 2 * embed_dim) for _ in range(enc_layers)])
        self.enc_decrease_hidden = nn.ModuleList([nn.Linear(2 * embed_dim, embed_dim) for _ in range(enc_layers)])
        self.enc_layer_norm = nn.ModuleList([nn.LayerNorm(embed_dim) for _ in range(enc_layers)])
        self.enc_att = nn.ModuleList([MultiHeadAttention(num_heads, embed_dim, dropout) for _ in range(enc_layers)])

        self.dec_input_dense = nn.Linear(en_vocab_size, embed_dim)
        self.dec_pos_enc = nn.Parameter(torch.zeros(1, max_len + 1, embed_dim))
        self.dec_increase_hidden = nn.ModuleList([nn.Linear(embed_dim, 2 * embed_dim) for _ in range(dec_layers)])
        self.dec_decrease_hidden = nn.ModuleList([nn.Linear(2 * embed_dim, embed_dim) for _ in range(dec_layers)])
        self.dec_layer_norm = nn.ModuleList([nn.LayerNorm(embed_dim) for _ in range(dec_layers)])
        self.dec_att = nn.ModuleList([MultiHeadAttention(num_heads, embed_dim, dropout) for _ in range(dec_layers)])
        self.enc_dec_att = nn.ModuleList([MultiHeadAttention(num_heads, embed_dim, dropout)
                                          for _ in range(dec_layers)])
        self.decoder_final_dense = nn.Linear(embed_dim, en_vocab_size)

    def config(self):
        """The constructor's arguments, enough to rebuild the model."""
        names = ("en_vocab_size", "de_vocab_size", "max_len", "embed_dim", "enc_layers", "dec_layers", "num_heads",
                 "dropout")
        return {name: getattr(self, name) for name in names}

    def _embed(self, x, dense, pos_enc, start, name):
        """One-hot (batch, length, vocab) or ids (batch, length) -> (batch, length, embed_dim) plus positions."""
        if x.dtype in (torch.long, torch.int32, torch.int64):
            embedded = F.embedding(x, dense.weight.t()) + dense.bias
        elif x.dim() == 3 and x.shape[-1] == dense.in_features:
            embedded = dense(x)
        else:
            raise ValueError(f"{name} must be token ids (batch, length) or one-hot (batch, length, "
                             f"{dense.in_features}), got {tuple(x.shape)} of {x.dtype}")
        length = x.shape[1]
        if start + length > pos_enc.shape[1]:
            raise ValueError(f"{name} has {start + length} positions; this model has {pos_enc.shape[1]} "
                             f"(max_len {self.max_len})")
        embedded = embedded + pos_enc[:, start:start + length]
        return F.dropout(embedded, self.dropout, training=True) if self.training and self.dropout > 0 else embedded

    def _feed_forward(self, x, increase, decrease, norm):
        hidden = decrease(torch.relu(increase(x)))
        if self.training and self.dropout > 0:
            hidden = F.dropout(hidden, self.dropout, training=True)
        return norm(x + hidden)

    def encode(self, x1, src_padding_mask=None, need_weights=True):
        """x1: German ids (batch, src_len) or one-hot; src_padding_mask: bool (batch, src_len), True at padding.

        Returns the encoder states (batch, src_len, embed_dim).
        """
        e = self._embed(x1, self.enc_input_dense, self.enc_pos_enc, 0, "x1")
        for i in range(self.enc_layers):
            a, _ = self.enc_att[i](e, e, e, key_padding_mask=src_padding_mask, need_weights=need_weights)
            e = self._feed_forward(a, self.enc_increase_hidden[i], self.enc_decrease_hidden[i],
                                   self.enc_layer_norm[i])
        return e

    def decode(self, x2, memory, src_padding_mask=None, caches=None, start=0, need_weights=True):
        """Run the decoder on x2 (ids (batch, tgt_len) or one-hot) attending to ``memory`` (encoder states).

        caches: optional list (one per decoder layer) of (self-attention cache, cross-attention cache) dicts for
        incremental decoding; ``start`` is the position of x2's first token.
        Returns (logits (batch, tgt_len, en_vocab_size), list of cross-attention weights per layer, each
        (num_heads, batch, tgt_len, src_len) or None).
        """
        d = self._embed(x2, self.dec_input_dense, self.dec_pos_enc, start, "x2")
        attentions = []
        for i in range(self.dec_layers):
            self_cache, cross_cache = caches[i] if caches is not None else (None, None)
            s, _ = self.dec_att[i](d, d, d, mask=True, cache=self_cache, need_weights=need_weights)
            c, attention = self.enc_dec_att[i](s, memory, memory, key_padding_mask=src_padding_mask,
                                               cache=cross_cache, need_weights=need_weights)
            attentions.append(attention)
            d = self._feed_forward(c, self.dec_increase_hidden[i], self.dec_decrease_hidden[i],
                                   self.dec_layer_norm[i])
        return self.decoder_final_dense(d), attentions

    def forward(self, x1, x2, src_padding_mask=None, need_weights=True):
        """x1: German (batch, src_len[, de_vocab_size]); x2: English decoder input behind a start token
        (batch, tgt_len[, en_vocab_size]); one-hot floats or ids, lengths up to max_len and max_len + 1.

        Returns (logits (batch, tgt_len, en_vocab_size), attention of the last decoder layer's enc_dec_att
        (num_heads, batch, tgt_len, src_len), or None without decoder layers or with need_weights=False).
        """
        memory = self.encode(x1, src_padding_mask, need_weights=need_weights)
        logits, attentions = self.decode(x2, memory, src_padding_mask, need_weights=need_weights)
        return logits, (attentions[-1] if attentions else None)

    def new_caches(self):
        """Empty per-layer caches for ``decode_step``: a (self-attention, cross-attention) dict pair per layer."""
        return [({}, {"static": True}) for _ in range(self.dec_layers)]

    def decode_step(self, token, memory, caches, position, src_padding_mask=None, need_weights=False):
        """One incremental decoding step: token ids (batch, 1) at ``position``; caches from ``new_caches``.

        Costs one position per step. Returns (logits (batch, en_vocab_size), cross-attention per layer).
        """
        logits, attentions = self.decode(token, memory, src_padding_mask, caches, position, need_weights)
        return logits[:, -1], attentions

    def reorder_caches(self, caches, index):
        """Select batch entries ``index`` (LongTensor) of every cache, for beam search."""
        for self_cache, cross_cache in caches:
            for cache in (self_cache, cross_cache):
                for name in ("k", "v"):
                    if name in cache:
                        cache[name] = cache[name].index_select(0, index)
