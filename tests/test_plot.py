"""Tests of lib/plot.py: saving figures; the counting model's attention heatmaps (panels, tick labels, count labels)."""
import pytest
import torch

from lib.plot import finish_figure, plot_counting_attention


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


@pytest.mark.parametrize("name, magic", [("figure.png", b"\x89PNG"), ("figure.pdf", b"%PDF"), ("figure.svg", b"<?xml")])
def test_a_figure_is_saved_in_the_format_of_its_extension(tmp_path, name, magic):
    import matplotlib.pyplot as plt
    path = tmp_path / "new folder" / name
    assert finish_figure(plt.figure(), str(path), show=False) == str(path)
    assert path.read_bytes().startswith(magic)
    assert [file.name for file in path.parent.iterdir()] == [name]  # no temporary file left beside it


def test_a_figure_that_fails_to_save_leaves_the_old_file_whole(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
    path = tmp_path / "figure.png"
    path.write_bytes(b"the figure of an earlier run")

    def fail_half_way(self, file, **options):
        file.write(b"half a figure")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", fail_half_way)
    with pytest.raises(KeyboardInterrupt):
        finish_figure(plt.figure(), str(path), show=False)
    assert path.read_bytes() == b"the figure of an earlier run"
    assert [file.name for file in tmp_path.iterdir()] == ["figure.png"]


if __name__ == "__main__":
    pytest.main([__file__])


def training_record(step, dev=None):
    record = {"step": step, "minutes": step / 10, "train_loss": 4.0, "valid_loss": 3.0 - step / 1000,
              "valid_bleu": step / 100, "valid_chrf": 20.0}
    return record if dev is None else dict(record, dev_bleu=dev, dev_chrf=dev + 10)


def test_the_run_comparison_draws_the_dev_set_panel_only_from_records_that_have_it():
    import matplotlib.pyplot as plt
    from lib.plot import show_run_comparison
    runs = {"old": [training_record(250), training_record(500)],
            "new": [training_record(250, dev=7.0), training_record(500), training_record(750, dev=9.0)]}
    figure = show_run_comparison(runs, mark_steps=[500])
    loss_axis, bleu_axis, dev_axis = figure.axes
    assert dev_axis.get_title() == "Second dev set BLEU"
    old_line, new_line = dev_axis.get_lines()[:2]
    assert list(old_line.get_xdata()) == [] and list(new_line.get_xdata()) == [250, 750]
    assert list(new_line.get_ydata()) == [7.0, 9.0]
    assert list(bleu_axis.get_lines()[1].get_ydata()) == [2.5, 5.0, 7.5]
    plt.close(figure)
    figure = show_run_comparison({"old": runs["old"]})
    assert len(figure.axes) == 2
    plt.close(figure)


def test_the_training_curves_draw_the_dev_set_scores_dashed_where_records_hold_them():
    import matplotlib.pyplot as plt
    from lib.plot import show_training_curves
    figure = show_training_curves([training_record(250), training_record(500, dev=8.0)])
    score_axis = figure.axes[1]
    dev_lines = {line.get_label(): line for line in score_axis.get_lines() if line.get_label().startswith("dev")}
    assert sorted(dev_lines) == ["dev set BLEU", "dev set chrF"]
    assert list(dev_lines["dev set BLEU"].get_xdata()) == [50.0]
    assert list(dev_lines["dev set chrF"].get_ydata()) == [18.0]
    assert dev_lines["dev set BLEU"].get_linestyle() == "--"
    plt.close(figure)
    figure = show_training_curves([training_record(250)])
    assert [line.get_label() for line in figure.axes[1].get_lines()] == ["BLEU", "chrF"]
    plt.close(figure)
