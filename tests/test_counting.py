"""Tests of the counting task: data, CountingModel (parameter order), training, train.py and plot_attention.py."""
import os

import pytest
import torch
import torch.nn as nn

import plot_attention
import train
from lib.attention import attention_function
from lib.checkpoint import save_atomic
from lib.counting import (CountingConfig, CountingModel, counting_accuracy, load_counting_model, make_counting_data,
                          train_counting_model)
from lib.plot import plot_counting_attention


def test_data_matches_a_direct_count():
    one_hot, digits, counts = make_counting_data(200, 10, 4, torch.Generator().manual_seed(3))
    assert one_hot.shape == (200, 10, 4) and one_hot.dtype == torch.float32
    assert digits.shape == (200, 10) and counts.shape == (200, 4)
    assert torch.equal(one_hot.sum(-1), torch.ones(200, 10)) and torch.equal(one_hot.argmax(-1), digits)
    for sequence, sequence_counts in zip(digits.tolist(), counts.tolist()):
        assert all(0 <= digit < 4 for digit in sequence)
        assert sequence_counts == [sequence.count(digit) for digit in range(4)]
    assert set(digits.flatten().tolist()) == {0, 1, 2, 3}


def test_data_is_reproducible_from_a_generator_seed():
    first = make_counting_data(50, 10, 3, torch.Generator().manual_seed(7))
    again = make_counting_data(50, 10, 3, torch.Generator().manual_seed(7))
    other = make_counting_data(50, 10, 3, torch.Generator().manual_seed(8))
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert not torch.equal(first[1], other[1])


def test_parameters_are_created_in_the_exercise_order():
    torch.manual_seed(0)
    model = CountingModel(3, 10, 8)
    torch.manual_seed(0)
    expected = {}
    norm = nn.LayerNorm(8)
    expected["norm.weight"], expected["norm.bias"] = norm.weight, norm.bias
    expected["query"] = torch.rand(1, 3, 8)
    for name, layer in (("key", nn.Linear(3, 8)), ("value", nn.Linear(3, 8)), ("out", nn.Linear(8, 11))):
        expected[f"{name}.weight"], expected[f"{name}.bias"] = layer.weight, layer.bias
    state = model.state_dict()
    assert set(state) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor.detach()), name
    assert model.hidden == 8


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_forward_is_the_documented_computation(activation):
    torch.manual_seed(0)
    model = CountingModel(3, 6, 5, activation=activation)
    one_hot, _, _ = make_counting_data(4, 6, 3, torch.Generator().manual_seed(0))
    outputs, weights = model(one_hot)
    assert outputs.shape == (4, 3, 7) and weights.shape == (4, 3, 6)
    query = model.query.repeat(4, 1, 1)
    attended, expected_weights = attention_function(query, model.key(one_hot), model.value(one_hot), 5,
                                                    activation=activation)
    torch.testing.assert_close(weights, expected_weights)
    torch.testing.assert_close(outputs, model.out(model.norm(attended + query)))
    if activation == "softmax":
        torch.testing.assert_close(weights.sum(-1), torch.ones(4, 3))


def test_forward_rejects_a_wrong_input_shape():
    model = CountingModel(3, 10, 8)
    with pytest.raises(ValueError, match=r"\(2, 10, 4\)"):
        model(torch.zeros(2, 10, 4))


def test_a_short_training_run_learns_and_restores_the_thread_count():
    threads = torch.get_num_threads()
    config = CountingConfig(steps=300, test_samples=1000)
    torch.manual_seed(0)
    untrained = CountingModel(3, 10, 8)
    one_hot, _, counts = make_counting_data(1000, 10, 3, torch.Generator().manual_seed(1))
    before = counting_accuracy(untrained, one_hot, counts)
    model, loss, accuracy = train_counting_model(config, progress=False)
    assert torch.get_num_threads() == threads
    assert before < 0.4  # guessing the most common count (3 of 10) is right about 26% of the time
    assert accuracy > 0.75 and loss < 0.8, (accuracy, loss)
    assert counting_accuracy(model, one_hot, counts) > 0.75


def test_every_flag_of_the_scripts_has_help():
    for parser in (train.build_parser(), plot_attention.build_parser()):
        for action in parser._actions:
            assert action.help, action.option_strings
    defaults = train.build_parser().parse_args([])
    assert (defaults.sequence_length, defaults.vocab_size, defaults.hidden, defaults.batch_size, defaults.steps,
            defaults.lr, defaults.patience, defaults.seed, defaults.activation, defaults.out) == \
        (10, 3, 8, 256, 2500, 1e-2, 250, 0, "sigmoid", "results/model.pth")


def test_train_script_end_to_end(tmp_path, capsys):
    out = tmp_path / "models" / "model.pth"
    accuracy = train.main(train.build_parser().parse_args(
        ["--steps", "150", "--sequence-length", "6", "--hidden", "6", "--seed", "2", "--activation", "softmax",
         "--out", str(out), "--no-progress"]))
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"Test accuracy: {accuracy:.4f}"
    assert any(line.startswith("Test loss: ") for line in lines)
    assert os.listdir(out.parent) == ["model.pth"]  # written atomically: no temporary file left
    model, config = load_counting_model(str(out))
    assert (config.sequence_length, config.hidden, config.seed, config.activation, config.steps) == \
        (6, 6, 2, "softmax", 150)
    assert model.activation == "softmax" and model.out.out_features == 7
    one_hot, _, counts = make_counting_data(config.test_samples, 6, 3, torch.Generator().manual_seed(3))
    assert 0 < counting_accuracy(model, one_hot, counts) <= 1


def test_load_accepts_the_exercise_bare_state_dict(tmp_path):
    torch.manual_seed(0)
    model = CountingModel(4, 7, 5)
    path = str(tmp_path / "bare.pth")
    save_atomic(model.state_dict(), path)
    loaded, config = load_counting_model(path)
    assert (config.vocab_size, config.sequence_length, config.hidden) == (4, 7, 5)
    x, _, _ = make_counting_data(3, 7, 4)
    torch.testing.assert_close(loaded(x)[0], model(x)[0])


def test_plot_attention_without_a_model_says_to_train_first(tmp_path):
    args = plot_attention.build_parser().parse_args(["--model", str(tmp_path / "missing.pth"),
                                                     "--out", str(tmp_path / "attention.png"), "--no-show"])
    with pytest.raises(SystemExit, match="python train.py"):
        plot_attention.main(args)
    assert not (tmp_path / "attention.png").exists()


def test_plot_attention_draws_a_heatmap(tmp_path, capsys):
    torch.manual_seed(0)
    model_path, figure_path = tmp_path / "model.pth", tmp_path / "figures" / "attention.png"
    save_atomic({"state_dict": CountingModel(3, 10, 8).state_dict(), "config": {"activation": "sigmoid"}},
                str(model_path))
    plot_attention.main(plot_attention.build_parser().parse_args(
        ["--model", str(model_path), "--out", str(figure_path), "--samples", "2", "--no-show"]))
    assert figure_path.stat().st_size > 1000
    assert "Correct counts:" in capsys.readouterr().out


def test_heatmap_rows_columns_and_count_labels():
    weights = torch.rand(2, 3, 5)
    digits = torch.tensor([[0, 2, 1, 1, 0], [2, 2, 2, 0, 1]])
    counts = torch.tensor([[2, 2, 1], [1, 1, 3]])
    predicted = torch.tensor([[2, 2, 1], [1, 0, 3]])
    figure = plot_counting_attention(weights, digits, predicted, counts)
    panels = [axis for axis in figure.axes if axis.get_label() != "<colorbar>"]
    assert len(panels) == 2
    for panel, sequence, guesses, truths in zip(panels, digits, predicted, counts):
        assert [label.get_text() for label in panel.get_xticklabels()] == [str(d) for d in sequence.tolist()]
        assert len(panel.get_yticklabels()) == 3
        texts = [text.get_text().strip() for text in panel.texts]
        for guess, truth in zip(guesses.tolist(), truths.tolist()):
            assert f"predicted {guess}, true {truth}" in texts
    wrong = [text for text in panels[1].texts if "predicted 0, true 1" in text.get_text()]
    assert wrong and wrong[0].get_color() == "red"
    import matplotlib.pyplot as plt
    plt.close(figure)


if __name__ == "__main__":
    pytest.main([__file__])
