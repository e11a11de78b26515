"""The counting model's loss and gradients in closed form, for fast training of a tiny model.

With one-hot inputs, every position holding digit d has the same key k_d and value v_d, so the sigmoid attention of
query i sums identical terms:

    attended_i = sum_positions sigmoid(q_i . k_pos / sqrt(h)) v_pos = sum_d count_d * sigmoid(q_i . k_d / sqrt(h)) v_d

It is linear in the digit counts, which is why the sigmoid model can count (a softmax would divide by the sum of the
weights and keep only proportions). Computing it from the counts costs vocab x vocab work instead of
sequence_length x vocab, and the whole backward pass is a few dozen tensor operations on features-first tensors
(vocab, features, batch), whose reductions run over contiguous batch rows. For a model of 200 parameters, PyTorch's
per-operation overhead, not arithmetic, is what a training step costs: with this module and Adam on one flat tensor a
step takes about 0.6 ms here, against 2.9 ms with autograd and torch.optim.Adam. ``tests/test_counting_gradients.py``
checks the loss and every gradient against autograd.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def digit_counts(digits, vocab_size):
    """digits (..., sequence_length) long -> how often each digit occurs, (..., vocab_size) long."""
    return torch.stack([(digits == digit).sum(-1) for digit in range(vocab_size)], dim=-1)


def detached_parameters(model):
    """A sigmoid CountingModel's parameters as a dict name -> detached tensor sharing their storage."""
    if model.activation != "sigmoid":
        raise ValueError("closed-form gradients exist here for the sigmoid model only; use autograd for softmax")
    return {name: parameter.detach() for name, parameter in model.named_parameters()}


class ClosedFormTraining:
    """Train a sigmoid CountingModel with closed-form gradients and Adam on one flat tensor of all its parameters.

    The model's parameters become views of ``flat`` until ``release``. ``optimizer`` is a ``torch.optim.Adam`` over
    ``flat`` that holds the hyperparameters, so that a ``ReduceLROnPlateau`` can lower its learning rate; ``step``
    applies the same update as its ``step()`` (tested) in six in-place operations, without the per-call overhead
    that dominates for 200 parameters.
    """

    def __init__(self, model, lr):
        parameters = detached_parameters(model)
        self.model = model
        self.names = list(parameters)
        self.flat = nn.Parameter(torch.cat([parameter.reshape(-1) for parameter in parameters.values()]))
        self.optimizer = torch.optim.Adam([self.flat], lr=lr)
        self.exp_avg, self.exp_avg_sq, self.steps = torch.zeros_like(self.flat), torch.zeros_like(self.flat), 0
        offset = 0
        for parameter in model.parameters():
            end = offset + parameter.numel()
            parameter.data = self.flat.data[offset:end].view_as(parameter)
            offset = end
        self.values = detached_parameters(model)  # views of flat now

    def step(self, counts, targets):
        """One training step on a batch: counts (vocab, batch) float, targets (vocab, batch) long, as in
        ``counting_loss_and_gradients``. Returns the loss before the step (0-d tensor)."""
        loss, gradients = counting_loss_and_gradients(self.values, counts, targets, self.model.norm.eps)
        self.adam_update_(torch.cat([gradients[name].reshape(-1) for name in self.names]))
        return loss

    def adam_update_(self, gradient):
        """Adam's update of ``flat`` (torch.optim.Adam's rule, no weight decay) with the hyperparameters of
        ``optimizer``; ``gradient`` has the shape of ``flat``."""
        group = self.optimizer.param_groups[0]
        beta1, beta2 = group["betas"]
        self.steps += 1
        self.exp_avg.lerp_(gradient, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        denominator = (self.exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** self.steps)).add_(group["eps"])
        self.flat.data.addcdiv_(self.exp_avg, denominator, value=-group["lr"] / (1 - beta1 ** self.steps))

    def release(self):
        """Give every model parameter its own storage again (a copy of its current value)."""
        for parameter in self.model.parameters():
            parameter.data = parameter.data.clone()


def counting_loss_and_gradients(parameters, counts, targets, norm_eps=1e-5):
    """Cross-entropy of a sigmoid CountingModel and its gradients, from the digit counts alone.

    parameters: dict name -> tensor, the model's ``named_parameters()`` (detached: ``detached_parameters(model)``);
    counts: (vocab, batch) float, how often each digit occurs in each sequence (features first);
    targets: (vocab, batch) long, the true counts (the same numbers, the classes to predict).
    Returns (loss: 0-d tensor, gradients: dict parameter name -> tensor of that parameter's shape), equal to
    ``counting_loss(model(one_hot)[0], counts)`` and its autograd gradients for any one-hot input with these counts.
    """
    vocab, batch = counts.shape
    hidden = parameters["query"].shape[-1]
    scale = 1 / math.sqrt(hidden)
    query = parameters["query"][0]  # (vocab, hidden)
    keys = parameters["key.weight"] + parameters["key.bias"][:, None]  # (hidden, vocab): the key of each digit
    values = parameters["value.weight"] + parameters["value.bias"][:, None]  # (hidden, vocab)
    gain, shift = parameters["norm.weight"][:, None], parameters["norm.bias"][:, None]
    out_weight, out_bias = parameters["out.weight"], parameters["out.bias"][:, None]

    # forward: every tensor is (query digit, features, batch)
    weights = torch.sigmoid(query @ keys * scale)  # (vocab queries, vocab digits): the attention weight of a digit
    mix = weights[:, None, :] * values  # (vocab, hidden, vocab): weighted value of each digit, per query
    residual = torch.baddbmm(query[:, :, None], mix, counts.expand(vocab, vocab, batch))  # attended + query
    centred = residual - residual.mean(1, keepdim=True)  # layer norm over the hidden features
    inv_std = centred.square().mean(1, keepdim=True).add_(norm_eps).rsqrt_()
    normalised = centred * inv_std
    layer_input = torch.addcmul(shift, normalised, gain)
    logits = torch.baddbmm(out_bias, out_weight.expand(vocab, -1, -1), layer_input)  # (vocab, classes, batch)
    loss = F.cross_entropy(logits, targets)  # classes on dimension 1

    # backward
    # d loss / d logits = (softmax - one-hot of the targets) / number of counts predicted
    d_logits = torch.softmax(logits, dim=1).div_(vocab * batch)  # not exp(log_softmax): exp of < -87 is slow
    d_logits.scatter_add_(1, targets[:, None, :], counts.new_full((vocab, 1, batch), -1 / (vocab * batch)))
    gradients = {
        "out.weight": torch.bmm(d_logits, layer_input.transpose(1, 2)).sum(0),
        "out.bias": d_logits.sum((0, 2)),
    }
    d_layer_input = torch.bmm(out_weight.T.expand(vocab, -1, -1), d_logits)  # (vocab, hidden, batch)
    gradients["norm.weight"] = (d_layer_input * normalised).sum((0, 2))
    gradients["norm.bias"] = d_layer_input.sum((0, 2))
    d_normalised = d_layer_input * gain
    d_residual = (d_normalised - d_normalised.mean(1, keepdim=True)
                  - normalised * (d_normalised * normalised).mean(1, keepdim=True)).mul_(inv_std)
    d_mix = torch.bmm(d_residual, counts.T.expand(vocab, batch, vocab))  # (vocab, hidden, vocab)
    d_values = (d_mix * weights[:, None, :]).sum(0)  # (hidden, vocab)
    d_scores = (d_mix * values).sum(1).mul_(weights * (1 - weights)).mul_(scale)  # (vocab, vocab)
    d_keys = query.T @ d_scores  # (hidden, vocab)
    gradients["query"] = torch.addmm(d_residual.sum(2), d_scores, keys.T)[None]
    gradients["key.weight"], gradients["key.bias"] = d_keys, d_keys.sum(1)
    gradients["value.weight"], gradients["value.bias"] = d_values, d_values.sum(1)
    return loss, gradients
