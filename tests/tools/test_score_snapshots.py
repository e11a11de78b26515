"""tools/score_snapshots.py: a run's snapshots scored on a dev set after the fact agree with what a run that had the
dev set logged at the same steps; its errors."""
import json

import pytest

from lib.training.log import read_training_log, records_with_scores
from lib.training.loop import train
from lib.translation.corpus import read_corpus, split_corpus
from tests.helpers import cli_outcome, tiny_config
from tests.tools.test_compare_runs import load_tool


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same tiny run twice (seeded alike): once scoring a dev set at each validation, once without one."""
    folder = tmp_path_factory.mktemp("score_snapshots")
    recipe = dict(max_steps=40, eval_every=20, lr=1e-2, eval_sentences=4, keep_snapshots=5)  # chrF above 0 by step 40
    config = tiny_config(folder / "without", dev_corpus="none", **recipe)
    train(config, progress=False)
    dev = folder / "dev.tsv"
    splits = split_corpus(read_corpus(config.corpus, "tsv"))
    held_out = splits["test"] + splits["valid"]  # never trained on, so both runs train alike
    assert len(held_out) >= 4
    dev.write_text("".join(f"{pair.german}\t{pair.english}\n" for pair in held_out))
    scored = tiny_config(folder / "with", dev_corpus=str(dev), **recipe)
    train(scored, progress=False)
    return folder, config.out_dir, scored.out_dir, dev


def test_the_scores_after_the_fact_are_those_a_run_with_the_dev_set_logged(runs, capsys):
    folder, without, with_dev, dev = runs
    tool = load_tool("score_snapshots")
    out = folder / "scored.jsonl"
    code, printed = cli_outcome(tool.build_parser().parse_args, tool.main,
                                [without, "--dev-corpus", str(dev), "--eval-sentences", "4", "--out", str(out)], capsys)
    assert code == 0 and "2 snapshot(s) scored on 4 pairs" in printed, printed
    logged = read_training_log(with_dev)
    assert [record["step"] for record in logged] == [20, 40] and logged[-1]["dev_chrf"] > 0
    for mine, theirs in zip(read_training_log(str(out)), logged):
        names = ("dev_bleu", "dev_chrf", "valid_bleu")
        assert [mine[name] for name in names] == [theirs[name] for name in names]
    code, printed = cli_outcome(tool.build_parser().parse_args, tool.main, [without, "--out", str(out)], capsys)
    assert code != 0 and f"--out {out} already exists: add --force" in printed


def test_a_snapshot_of_another_run_or_a_folder_without_snapshots_is_refused(runs, capsys, tmp_path):
    folder, without, _, _ = runs
    tool = load_tool("score_snapshots")
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(read_training_log(without)[0]) + "\n")  # step 20 alone
    code, printed = cli_outcome(tool.build_parser().parse_args, tool.main,
                                [str(log), "--snapshots", f"{without}/snapshots/step0000040.pth",
                                 "--out", str(tmp_path / "out.jsonl")], capsys)
    assert code != 0 and "has no record of step(s) 40: the snapshots are of another run" in printed, printed
    (tmp_path / "empty").mkdir()
    code, printed = cli_outcome(tool.build_parser().parse_args, tool.main, [str(tmp_path / "empty")], capsys)
    assert code != 0 and f"RUN {tmp_path / 'empty' / 'log.jsonl'} does not exist" in printed, printed
    code, printed = cli_outcome(tool.build_parser().parse_args, tool.main, [str(tmp_path)], capsys)
    assert code != 0 and "has no snapshots/step*.pth: name the snapshots with --snapshots" in printed, printed


def test_a_step_validated_twice_is_scored_in_its_later_record():
    records = [{"step": 4, "valid_bleu": 1.0}, {"step": 4, "valid_bleu": 2.0}, {"step": 8, "valid_bleu": 3.0}]
    scored = records_with_scores(records, {4: (5.555, 30.0)}, "log.jsonl")
    assert scored == [records[0], dict(records[1], dev_bleu=5.55, dev_chrf=30.0), records[2]]
    assert "dev_bleu" not in records[1]  # the records given are left as they were
