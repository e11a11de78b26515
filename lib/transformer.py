"""The exercise's Transformer: German (encoder) to English (decoder), post-norm, learned positional encodings.

Parameter creation order follows the exercise, so seeded one-hot calls ``model(x1, x2)`` give its numbers. On top:
token-id inputs (an embedding lookup into the same weights), sequences shorter than ``max_len``, key-padding masks,
cached incremental decoding (see ``TransformerModel.encode`` / ``decode_step``), and the options of low-resource
recipes, all off by default: dropout (hidden, attention, activation), decoder layer-drop, pre-norm, a feed-forward
width other than 2 * embed_dim, an output projection tied to the decoder's input embedding, and one embedding shared
by the encoder's input, the decoder's input and the output projection (for a joint vocabulary).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.attention import attention_function
from lib.checks import check_probability, check_range

_SIZES = ("en_vocab_size", "de_vocab_size", "max_len", "embed_dim", "num_heads", "ffn_dim")  # whole numbers >= 1
_LAYER_COUNTS = ("enc_layers", "dec_layers")  # whole numbers >= 0


def _check_options(**options):
    """Raise a ValueError naming the first of the given constructor ``options`` that is out of range.

    Sizes are whole numbers >= 1 (``ffn_dim`` may be None), layer counts >= 0, dropouts probabilities in [0, 1)
    (None: not given), ``decoder_layerdrop`` in [0, 1]; embed_dim must split into num_heads heads, and
    share_all_embeddings needs one vocabulary size for both languages.
    """
    for name, value in options.items():
        if name in _SIZES and value is not None:
            check_range(name, value, 1, integer=True)
        elif name in _LAYER_COUNTS:
            check_range(name, value, 0, integer=True)
        elif name.endswith(("dropout", "layerdrop")) and value is not None:
            check_probability(name, value, allow_one=name == "decoder_layerdrop")
    if options["embed_dim"] % options["num_heads"]:
        raise ValueError(f"embed_dim {options['embed_dim']} must be divisible by num_heads {options['num_heads']}")
    if options.get("share_all_embeddings") and options["en_vocab_size"] != options["de_vocab_size"]:
        raise ValueError(f"share_all_embeddings needs one vocabulary for both languages, but en_vocab_size is "
                         f"{options['en_vocab_size']} and de_vocab_size {options['de_vocab_size']}: give both the "
                         "same size (train a joint vocabulary), or leave share_all_embeddings off")


def _normal(*shape, std=1e-2):
    """A tensor of ``shape`` drawn from N(0, std): the same numbers as ``torch.normal(0.0, std, shape)``, but on the
    default device, so that under ``with torch.device("meta")`` nothing is allocated or drawn (a model's shapes)."""
    tensor = torch.empty(shape)
    return tensor if tensor.is_meta else tensor.normal_(0.0, std)


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with a residual connection to the query and a LayerNorm.

    Projections multiply from the right (``query @ W_query``); head h uses columns h*d_head:(h+1)*d_head.
    Post-norm (the exercise's, default): ``layer_norm(query + attention(query, key, value))``.

    dropout: on the output, before the residual.
    attention_dropout: on the attention weights (None: same as dropout).
    pre_norm: ``query + attention(layer_norm(query), ...)``; key and value are normalised too when they are the query
    tensor itself (self-attention), used as given otherwise (cross-attention to the encoder's output).
    """

    def __init__(self, num_heads, embed_dim, dropout=0.0, attention_dropout=None, pre_norm=False):
        super().__init__()
        _check_options(num_heads=num_heads, embed_dim=embed_dim, dropout=dropout, attention_dropout=attention_dropout)
        self.num_heads = num_heads
        self.embed_dim = embed_dim
        self.dropout = dropout
        self.attention_dropout = dropout if attention_dropout is None else attention_dropout
        self.pre_norm = pre_norm
        self.W_query = nn.Parameter(_normal(embed_dim, embed_dim))
        self.W_key = nn.Parameter(_normal(embed_dim, embed_dim))
        self.W_value = nn.Parameter(_normal(embed_dim, embed_dim))
        self.W_output = nn.Parameter(_normal(embed_dim, embed_dim))
        self.layer_norm = nn.LayerNorm(embed_dim)

    def split_heads(self, x):
        """(batch, length, embed_dim) -> (batch, num_heads, length, d_head)."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.embed_dim // self.num_heads).transpose(1, 2)

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
        need_weights: True computes the weights with ``lib.attention.attention_function`` (softmax) and returns them;
        False uses torch's fused kernel (F.scaled_dot_product_attention) and returns None (training).
        Returns (output (batch, query_len, embed_dim), weights (num_heads, batch, query_len, key_len) or None).
        """
        residual = query
        if self.pre_norm:
            normalised = self.layer_norm(query)
            key = normalised if key is query else key
            value = normalised if value is query else value
            query = normalised
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
        batch, heads, query_len, d_head = q.shape
        key_len = k.shape[2]
        attention_dropout = self.attention_dropout if self.training else 0.0
        if need_weights:
            flat_mask = None if allowed is None else allowed.expand(batch, heads, query_len, key_len).reshape(
                batch * heads, query_len, key_len)
            v_flat = v.reshape(batch * heads, key_len, d_head)
            heads_out, weights = attention_function(q.reshape(batch * heads, query_len, d_head),
                                                    k.reshape(batch * heads, key_len, d_head), v_flat, d_head,
                                                    activation="softmax", mask=flat_mask)
            if attention_dropout > 0:
                heads_out = F.dropout(weights, attention_dropout, training=True) @ v_flat
            heads_out = heads_out.view(batch, heads, query_len, d_head)
            weights = weights.view(batch, heads, query_len, key_len).transpose(0, 1)
        else:
            heads_out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=attention_dropout)
            weights = None
        output = heads_out.transpose(1, 2).reshape(batch, query_len, self.embed_dim) @ self.W_output
        if self.training and self.dropout > 0:
            output = F.dropout(output, self.dropout, training=True)
        if self.pre_norm:
            return residual + output, weights
        return self.layer_norm(output + residual), weights

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
    """German-to-English Transformer with the exercise's layout and parameter order.

    Inputs are one-hot floats (batch, length, vocab), as in the exercise, or token ids (batch, length).

    en_vocab_size, de_vocab_size: the English (target) and German (source) vocabulary sizes.
    max_len: source positions; the decoder's input has max_len + 1 (a start token in front).
    embed_dim, num_heads: the model's width and its attention heads (embed_dim divisible by num_heads).
    enc_layers, dec_layers: encoder and decoder layers (0 or more).

    With the defaults the model is the exercise's. Each option below is off by default; for the literature behind
    them see docs/translation.md, 'Training your own'.
    dropout: on the embeddings, the attention outputs and the feed-forward outputs.
    attention_dropout: on the attention weights (None: same as dropout).
    activation_dropout: after the ReLU inside the feed-forward.
    decoder_layerdrop: in training, skip each decoder layer with this probability (never in evaluation).
    pre_norm: ``x + sublayer(LayerNorm(x))``, plus final norms ``enc_final_norm``, ``dec_final_norm`` (created last).
    tie_embeddings: logits = ``h @ dec_input_dense.weight + decoder_output_bias``, instead of decoder_final_dense.
    share_all_embeddings: the decoder's input embedding is ``enc_input_dense`` (no new draws), tied to the output too.
    ffn_dim: the feed-forward's hidden width (None: 2 * embed_dim, the exercise's).
    scale_embeddings: token embeddings times sqrt(embed_dim) before the positions are added.
    A shared or tied tensor is listed under each of its names in ``state_dict()``, so checkpoints load into a model
    built from their ``config()``.
    """

    def __init__(self, en_vocab_size, de_vocab_size, max_len=20, embed_dim=64, enc_layers=6, dec_layers=6,
                 num_heads=4, dropout=0.0, pre_norm=False, tie_embeddings=False, ffn_dim=None,
                 attention_dropout=None, activation_dropout=0.0, decoder_layerdrop=0.0, scale_embeddings=False,
                 share_all_embeddings=False):
        super().__init__()
        _check_options(en_vocab_size=en_vocab_size, de_vocab_size=de_vocab_size, max_len=max_len,
                       embed_dim=embed_dim, enc_layers=enc_layers, dec_layers=dec_layers, num_heads=num_heads,
                       ffn_dim=ffn_dim, dropout=dropout, attention_dropout=attention_dropout,
                       activation_dropout=activation_dropout, decoder_layerdrop=decoder_layerdrop,
                       share_all_embeddings=share_all_embeddings)
        self.en_vocab_size = en_vocab_size
        self.de_vocab_size = de_vocab_size
        self.max_len = max_len
        self.embed_dim = embed_dim
        self.enc_layers = enc_layers
        self.dec_layers = dec_layers
        self.num_heads = num_heads
        self.dropout = dropout
        self.pre_norm = bool(pre_norm)
        self.share_all_embeddings = bool(share_all_embeddings)
        self.tie_embeddings = bool(tie_embeddings) or self.share_all_embeddings
        self.ffn_dim = ffn_dim
        self.attention_dropout = attention_dropout
        self.activation_dropout = activation_dropout
        self.decoder_layerdrop = decoder_layerdrop
        self.scale_embeddings = bool(scale_embeddings)
        hidden = 2 * embed_dim if ffn_dim is None else ffn_dim

        def attention():
            return MultiHeadAttention(num_heads, embed_dim, dropout, attention_dropout, self.pre_norm)

        self.enc_input_dense = nn.Linear(de_vocab_size, embed_dim)
        self.enc_pos_enc = nn.Parameter(torch.zeros(1, max_len, embed_dim))
        self.enc_increase_hidden = nn.ModuleList([nn.Linear(embed_dim, hidden) for _ in range(enc_layers)])
        self.enc_decrease_hidden = nn.ModuleList([nn.Linear(hidden, embed_dim) for _ in range(enc_layers)])
        self.enc_layer_norm = nn.ModuleList([nn.LayerNorm(embed_dim) for _ in range(enc_layers)])
        self.enc_att = nn.ModuleList([attention() for _ in range(enc_layers)])

        if self.share_all_embeddings:
            self.dec_input_dense = self.enc_input_dense  # the same module: no new parameters, no random draws
        else:
            self.dec_input_dense = nn.Linear(en_vocab_size, embed_dim)
        self.dec_pos_enc = nn.Parameter(torch.zeros(1, max_len + 1, embed_dim))
        self.dec_increase_hidden = nn.ModuleList([nn.Linear(embed_dim, hidden) for _ in range(dec_layers)])
        self.dec_decrease_hidden = nn.ModuleList([nn.Linear(hidden, embed_dim) for _ in range(dec_layers)])
        self.dec_layer_norm = nn.ModuleList([nn.LayerNorm(embed_dim) for _ in range(dec_layers)])
        self.dec_att = nn.ModuleList([attention() for _ in range(dec_layers)])
        self.enc_dec_att = nn.ModuleList([attention() for _ in range(dec_layers)])
        if self.tie_embeddings:
            self.decoder_output_bias = nn.Parameter(torch.zeros(en_vocab_size))
        else:
            self.decoder_final_dense = nn.Linear(embed_dim, en_vocab_size)
        if self.pre_norm:
            self.enc_final_norm = nn.LayerNorm(embed_dim)
            self.dec_final_norm = nn.LayerNorm(embed_dim)

    CONFIG_NAMES = ("en_vocab_size", "de_vocab_size", "max_len", "embed_dim", "enc_layers", "dec_layers", "num_heads",
                    "dropout", "pre_norm", "tie_embeddings", "ffn_dim", "attention_dropout", "activation_dropout",
                    "decoder_layerdrop", "scale_embeddings", "share_all_embeddings")

    def config(self):
        """Every constructor argument as given (None stays None), enough to rebuild the model.

        A config saved before the options existed lacks their keys; building from it gives the same model.
        """
        return {name: getattr(self, name) for name in self.CONFIG_NAMES}

    def _embed(self, x, dense, pos_enc, start, name, check_ids=True):
        """One-hot (batch, length, vocab) or ids (batch, length) -> (batch, length, embed_dim) plus positions.

        check_ids: raise a ValueError for ids outside [0, vocab) (one min/max; off for the decoder's own tokens).
        """
        if x.dtype in (torch.long, torch.int32, torch.int64) and x.dim() == 2:
            if check_ids and x.numel():
                low, high = torch.aminmax(x)
                if low < 0 or high >= dense.in_features:
                    raise ValueError(f"{name} has token id {int(low) if low < 0 else int(high)}; ids must be in "
                                     f"[0, {dense.in_features}) for this model's vocabulary of {dense.in_features}: "
                                     "encode text with the vocabulary the model was trained with")
            embedded = F.embedding(x, dense.weight.t()) + dense.bias
        elif x.dim() == 3 and x.shape[-1] == dense.in_features and x.is_floating_point():
            embedded = dense(x)
        else:
            raise ValueError(f"{name} must be token ids (batch, length) or one-hot (batch, length, "
                             f"{dense.in_features}), got {tuple(x.shape)} of {x.dtype}")
        if self.scale_embeddings:
            embedded = embedded * math.sqrt(self.embed_dim)
        length = x.shape[1]
        if start + length > pos_enc.shape[1]:
            raise ValueError(f"{name} has {start + length} positions; this model has {pos_enc.shape[1]} "
                             f"(max_len {self.max_len})")
        embedded = embedded + pos_enc[:, start:start + length]
        return F.dropout(embedded, self.dropout, training=True) if self.training and self.dropout > 0 else embedded

    def _feed_forward(self, x, increase, decrease, norm):
        """Post-norm ``norm(x + FFN(x))`` or pre-norm ``x + FFN(norm(x))``; FFN = decrease(relu(increase(.)))."""
        hidden = torch.relu(increase(norm(x) if self.pre_norm else x))
        if self.training and self.activation_dropout > 0:
            hidden = F.dropout(hidden, self.activation_dropout, training=True)
        hidden = decrease(hidden)
        if self.training and self.dropout > 0:
            hidden = F.dropout(hidden, self.dropout, training=True)
        return x + hidden if self.pre_norm else norm(x + hidden)

    def output_projection(self, h):
        """Decoder states (batch, length, embed_dim) -> logits (batch, length, en_vocab_size)."""
        if self.tie_embeddings:
            return h @ self.dec_input_dense.weight + self.decoder_output_bias
        return self.decoder_final_dense(h)

    def encode(self, x1, src_padding_mask=None, need_weights=True):
        """x1: German ids (batch, src_len) or one-hot; src_padding_mask: bool (batch, src_len), True at padding.

        Returns the encoder states (batch, src_len, embed_dim).
        """
        if x1.dim() >= 2 and x1.shape[1] == 0:
            raise ValueError("x1 (the German source) is empty (length 0): give at least one token per sentence "
                             "(e.g. pad empty sentences to length 1 and mask them)")
        e = self._embed(x1, self.enc_input_dense, self.enc_pos_enc, 0, "x1")
        for i in range(self.enc_layers):
            a, _ = self.enc_att[i](e, e, e, key_padding_mask=src_padding_mask, need_weights=need_weights)
            e = self._feed_forward(a, self.enc_increase_hidden[i], self.enc_decrease_hidden[i],
                                   self.enc_layer_norm[i])
        return self.enc_final_norm(e) if self.pre_norm else e

    def decode(self, x2, memory, src_padding_mask=None, caches=None, start=0, need_weights=True, check_ids=True):
        """Run the decoder on x2 (ids (batch, tgt_len) or one-hot) attending to ``memory`` (encoder states).

        caches: optional list (one per decoder layer) of (self-attention cache, cross-attention cache) dicts for
        incremental decoding; ``start`` is the position of x2's first token. In training, each layer is skipped with
        probability ``decoder_layerdrop`` (one draw per layer and call, for the whole batch).
        Returns (logits (batch, tgt_len, en_vocab_size), list of cross-attention weights per layer, each
        (num_heads, batch, tgt_len, src_len), or None where weights were not asked for or the layer was skipped).
        """
        d = self._embed(x2, self.dec_input_dense, self.dec_pos_enc, start, "x2", check_ids)
        skip = None
        if self.training and self.decoder_layerdrop > 0 and self.dec_layers:
            skip = (torch.rand(self.dec_layers) < self.decoder_layerdrop).tolist()
        attentions = []
        for i in range(self.dec_layers):
            if skip is not None and skip[i]:
                attentions.append(None)
                continue
            self_cache, cross_cache = caches[i] if caches is not None else (None, None)
            s, _ = self.dec_att[i](d, d, d, mask=True, cache=self_cache, need_weights=need_weights)
            c, attention = self.enc_dec_att[i](s, memory, memory, key_padding_mask=src_padding_mask,
                                               cache=cross_cache, need_weights=need_weights)
            attentions.append(attention)
            d = self._feed_forward(c, self.dec_increase_hidden[i], self.dec_decrease_hidden[i],
                                   self.dec_layer_norm[i])
        return self.output_projection(self.dec_final_norm(d) if self.pre_norm else d), attentions

    def forward(self, x1, x2, src_padding_mask=None, need_weights=True):
        """x1: German (batch, src_len[, de_vocab_size]); x2: English decoder input behind a start token
        (batch, tgt_len[, en_vocab_size]); one-hot floats or ids, lengths 1 to max_len and 0 to max_len + 1.

        Returns (logits (batch, tgt_len, en_vocab_size), attention of the last decoder layer's enc_dec_att
        (num_heads, batch, tgt_len, src_len), or None without decoder layers, with need_weights=False, or when
        layer-drop skipped that layer).
        """
        memory = self.encode(x1, src_padding_mask, need_weights=need_weights)
        logits, attentions = self.decode(x2, memory, src_padding_mask, need_weights=need_weights)
        return logits, (attentions[-1] if attentions else None)

    def new_caches(self):
        """Empty per-layer caches for ``decode_step``: a (self-attention, cross-attention) dict pair per layer."""
        return [({}, {"static": True}) for _ in range(self.dec_layers)]

    def decode_step(self, token, memory, caches, position, src_padding_mask=None, need_weights=False):
        """One incremental decoding step: token ids (batch, 1) at ``position``; caches from ``new_caches``.

        Costs one position per step. The ids are not range-checked (they are the model's own predictions).
        Returns (logits (batch, en_vocab_size), cross-attention per layer).
        """
        logits, attentions = self.decode(token, memory, src_padding_mask, caches, position, need_weights,
                                         check_ids=False)
        return logits[:, -1], attentions

    def reorder_caches(self, caches, index):
        """Select batch entries ``index`` (LongTensor) of every cache, for beam search."""
        for self_cache, cross_cache in caches:
            for cache in (self_cache, cross_cache):
                for name in ("k", "v"):
                    if name in cache:
                        cache[name] = cache[name].index_select(0, index)
