"""Every path flag of every script and tool goes through one gate of lib/files.py. Inputs (check_input): a missing file
or a folder where a file is expected is refused in one line naming the flag, before any work. Outputs
(check_output): a file the user already has is never replaced without --force, while the script's own default output
is replaced by a rerun. The flags come from the parsers: every flag that takes a name is in INPUTS, OUTPUTS or
NOT_FILES, so a new path flag fails the first test until it has a row here."""
import os

import pytest

from lib.files import REPOSITORY
from lib.translation.translator import SHIPPED_CHECKPOINT
from tests.helpers import SCRIPTS, build_parser, flag_actions, load_script

LOG = os.path.join(REPOSITORY, "docs", "screening", "mix_leg.jsonl")  # a committed training log

# (script, output flag): the rest of a command line that reaches the flag's check
OUTPUTS = {
    ("run_translation", "--export"): [],
    ("run_translation", "--html"): ["--text", "Hallo."],
    ("train", "--out"): ["--steps", "1"],
    ("plot_attention", "--out"): ["--checkpoint", "{shipped}"],  # any file: outputs are checked before it is read
    ("plot_attention", "--html"): ["--checkpoint", "{shipped}", "--out", "{tmp}/new.png"],
    ("plot_attention_on_input", "--out"): [],
    ("plot_adversarial_example", "--out"): [],
    ("tools/build_parallel_corpus", "--out"): ["--deb-dir", "{tmp}"],
    ("tools/compare_runs", "--figure"): [LOG],
    ("tools/score_snapshots", "--out"): [LOG, "--snapshots", "{shipped}"],
}
# (script, input flag): the rest of a command line that reaches the flag's check ("{missing}": the file the test
# names); the flags that read a folder are refused with a file, those that read a file with a folder
INPUTS = {
    ("run_translation", "--input"): [],
    ("run_translation", "--checkpoint"): ["--text", "Hallo."],
    ("run_translation", "--average"): ["--export", "{tmp}/out.pth", "--average", "{shipped}"],
    ("run_translation", "--compare"): ["--eval"],
    ("run_translation", "--corpus"): ["--eval", "--corpus-format", "tsv"],
    ("run_translation", "--init-from"): ["--train", "--out-dir", "{tmp}/run"],
    ("run_translation", "--extra-corpus"): ["--train", "--out-dir", "{tmp}/run"],
    ("run_translation", "--dev-corpus"): ["--train", "--out-dir", "{tmp}/run"],
    ("plot_attention", "--checkpoint"): ["--out", "{tmp}/figure.png"],
    ("plot_attention_on_input", "--weights"): ["--model", "resnet18"],
    ("plot_attention_on_input", "--images"): [],
    ("plot_attention_on_input", "--imagenet-dir"): [],
    ("plot_adversarial_example", "--weights"): ["--model", "resnet18"],
    ("plot_adversarial_example", "--images"): [],
    ("plot_adversarial_example", "--imagenet-dir"): [],
    ("tools/build_parallel_corpus", "--sources"): ["--out", "{tmp}/out.tsv"],
    ("tools/build_parallel_corpus", "--deb-dir"): ["--out", "{tmp}/out.tsv"],
    ("tools/build_parallel_corpus", "--ding"): ["--out", "{tmp}/out.tsv", "--deb-dir", "{tmp}"],
    ("tools/compare_runs", "runs"): [],
    ("tools/score_snapshots", "run"): [],
    ("tools/score_snapshots", "--snapshots"): [LOG],
    ("tools/score_snapshots", "--dev-corpus"): [LOG, "--snapshots", "{shipped}"],
    ("tools/sweep_decoding", "--checkpoint"): [],
    ("tools/sweep_decoding", "--average"): [],
    ("tools/sweep_decoding", "--corpus"): [],
    ("benchmarks/decode_speed", "--checkpoint"): [],
    ("benchmarks/decode_speed", "--corpus"): [],
    ("benchmarks/saliency_speed", "--weights"): ["--model", "resnet18"],
    ("benchmarks/translate_file_speed", "--checkpoint"): [],
    ("benchmarks/translate_file_speed", "--corpus"): [],
    ("benchmarks/translate_precision", "--checkpoint"): [],
    ("benchmarks/translate_precision", "--corpus"): [],
}
FOLDER_INPUTS = {"--imagenet-dir", "--deb-dir", "runs", "run"}  # run(s): a run's folder or its log file
POSITIONAL = {"runs", "run"}
# flags that take a name that is no file read or written: text, output folders, names of things
NOT_FILES = {"--text", "--figures-dir", "--out-dir", "--cache-dir", "--target", "--only", "--device",
             "--extra-sources"}


def name_flags(script):
    """The flags of ``script`` whose value is a name (no number type, no fixed choices, not a switch), and its
    positional arguments."""
    parser = build_parser(script)
    flags = {action.option_strings[0] for action in flag_actions(parser)
             if action.type in (None, str) and action.nargs != 0 and not action.choices}
    return flags | {action.dest for action in parser._actions if not action.option_strings}


def test_every_flag_that_takes_a_name_is_an_input_an_output_or_no_file():
    found = {(script, flag) for script in SCRIPTS for flag in name_flags(script)}
    assert {case for case in found if case[1] not in NOT_FILES} == set(INPUTS) | set(OUTPUTS)


@pytest.mark.parametrize("script", sorted({script for script, _ in OUTPUTS}))
def test_every_script_that_writes_a_named_file_has_force(script):
    assert "--force" in {option for action in flag_actions(build_parser(script)) for option in action.option_strings}


def run_script(script, argv, monkeypatch):
    """Run ``script``'s main on ``argv`` in this process with the working folder at the repository."""
    monkeypatch.chdir(REPOSITORY)
    module = load_script(script)
    parse_args = getattr(module, "parse_args", module.build_parser().parse_args)  # the tools have no parse_args
    return module.main(parse_args(argv))


@pytest.mark.parametrize("script, flag", sorted(INPUTS), ids=[" ".join(case) for case in sorted(INPUTS)])
def test_a_missing_input_or_one_of_the_wrong_kind_is_refused_naming_the_flag(script, flag, tmp_path, monkeypatch):
    (tmp_path / "a-file.txt").write_text("not a folder\n")
    wrong_kind = tmp_path / "a-file.txt" if flag in FOLDER_INPUTS else tmp_path
    if flag == "--images":  # files and folders are both images' places: the wrong kind is a folder without one
        wrong_kind = tmp_path / "empty"
        wrong_kind.mkdir()
    for path, error in ((tmp_path / "missing", FileNotFoundError), (wrong_kind, (OSError, ValueError))):
        argv = [text.format(tmp=tmp_path, shipped=SHIPPED_CHECKPOINT) for text in INPUTS[script, flag]]
        argv += [str(path)] if flag in POSITIONAL else [flag, str(path)]
        with pytest.raises(error, match=f"{flag} {path}" if flag not in POSITIONAL else str(path)) as caught:
            run_script(script, argv, monkeypatch)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("script, flag", sorted(OUTPUTS), ids=[" ".join(case) for case in sorted(OUTPUTS)])
def test_an_existing_file_is_kept_without_force(script, flag, tmp_path, monkeypatch):
    mine = tmp_path / ("mine.tsv" if script.endswith("corpus") else "mine.png" if flag != "--html" else "mine.html")
    mine.write_bytes(b"a file of my own\n")
    argv = [text.format(tmp=tmp_path, shipped=SHIPPED_CHECKPOINT) for text in OUTPUTS[script, flag]] + [flag, str(mine)]
    with pytest.raises(FileExistsError, match=f"^{flag} .*mine.* already exists: add --force"):
        run_script(script, argv, monkeypatch)
    assert mine.read_bytes() == b"a file of my own\n"


def test_the_default_figure_is_the_scripts_own_and_a_rerun_replaces_it(tmp_path):
    from lib.plot import check_figure_output
    default = tmp_path / "results" / "attention.png"
    assert check_figure_output(None, "--out", default=str(default)) == str(default)
    assert default.parent.is_dir()  # made for the default
    default.write_bytes(b"the last run's figure")
    assert check_figure_output(str(default), "--out", default=str(default)) == str(default)
    assert check_figure_output(str(tmp_path / "mine"), "--out") == str(tmp_path / "mine.png")
    (tmp_path / "mine.png").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="add --force"):
        check_figure_output(str(tmp_path / "mine"), "--out")
    assert check_figure_output(str(tmp_path / "mine.png"), "--out", force=True)
    with pytest.raises(ValueError, match="matplotlib cannot write .docx"):
        check_figure_output(str(tmp_path / "figure.docx"), "--out")
    with pytest.raises(IsADirectoryError, match="names a folder"):
        check_figure_output(str(tmp_path) + "/", "--out")
