"""Every file a script or tool writes goes through one gate (lib.files.check_output): a file the user already has is
never replaced without --force, checked before any work, while the script's own default output is replaced by a
rerun. The path flags come from the parsers: every flag that takes a name is either an output in OUTPUTS or named
in NOT_OUTPUTS, so a new output flag fails the first test until it has a row here."""
import os

import pytest

from lib.files import REPOSITORY
from tests.helpers import SCRIPTS, build_parser, flag_actions, load_script

LOG = os.path.join(REPOSITORY, "docs", "screening", "mix_leg.jsonl")  # a committed training log

# (script, output flag): the rest of a command line that reaches the flag's check
OUTPUTS = {
    ("run_translation", "--export"): [],
    ("run_translation", "--html"): ["--text", "Hallo."],
    ("train", "--out"): ["--steps", "1"],
    ("plot_attention", "--out"): [],
    ("plot_attention", "--html"): ["--out", "{tmp}/new.png"],
    ("plot_attention_on_input", "--out"): [],
    ("plot_adversarial_example", "--out"): [],
    ("tools/build_parallel_corpus", "--out"): ["--deb-dir", "{tmp}"],
    ("tools/compare_runs", "--figure"): [LOG],
}
# flags that take a name but write no file of it: inputs, folders, names of things
NOT_OUTPUTS = {"--text", "--input", "--checkpoint", "--average", "--compare", "--corpus", "--figures-dir",
               "--out-dir", "--weights", "--images", "--imagenet-dir", "--target", "--cache-dir", "--sources",
               "--only", "--deb-dir", "--ding", "--device", "--init-from", "--extra-corpus", "--extra-sources",
               "--corpus-format", "--lr-schedule", "--model", "--photos", "--method", "--attack", "--activation",
               "--mode", "--precision", "--amp", "--no-amp"}


def name_flags(script):
    """The flags of ``script`` whose value is a name (no number type, no fixed choices, not a switch)."""
    return {action.option_strings[0] for action in flag_actions(build_parser(script))
            if action.type is None and action.nargs != 0 and not action.choices}


def test_every_flag_that_takes_a_name_is_an_output_with_a_row_or_not_an_output():
    found = {(script, flag) for script in SCRIPTS for flag in name_flags(script)}
    outputs = {case for case in found if case[1] not in NOT_OUTPUTS}
    assert outputs == set(OUTPUTS)


@pytest.mark.parametrize("script", sorted({script for script, _ in OUTPUTS}))
def test_every_script_that_writes_a_named_file_has_force(script):
    assert "--force" in {option for action in flag_actions(build_parser(script)) for option in action.option_strings}


def run_script(script, argv, monkeypatch):
    """Run ``script``'s main on ``argv`` in this process with the working folder at the repository."""
    monkeypatch.chdir(REPOSITORY)
    module = load_script(script)
    parse_args = getattr(module, "parse_args", module.build_parser().parse_args)  # the tools have no parse_args
    return module.main(parse_args(argv))


@pytest.mark.parametrize("script, flag", sorted(OUTPUTS), ids=[" ".join(case) for case in sorted(OUTPUTS)])
def test_an_existing_file_is_kept_without_force(script, flag, tmp_path, monkeypatch):
    mine = tmp_path / ("mine.tsv" if script.endswith("corpus") else "mine.png" if flag != "--html" else "mine.html")
    mine.write_bytes(b"a file of my own\n")
    argv = [text.replace("{tmp}", str(tmp_path)) for text in OUTPUTS[script, flag]] + [flag, str(mine)]
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
