"""The file gate (lib/files.py) on every path flag of run_translation.py, before any model is loaded: inputs that are
folders or missing are refused, standard input is read from '-' and /dev/stdin, an output is never an input, never a
shipped file of data/, never an existing file without --force, and a device such as /dev/null is written in place.
The flags come from the parser (every flag whose metavar names a file), so a new path flag needs a row here."""
import os
import stat
import subprocess
import sys

import pytest

import run_translation
from lib.translation import commands
from lib.files import REPOSITORY
from lib.translation.translator import SHIPPED_CHECKPOINT

# Each path flag with the rest of a command line that uses it.
INPUT_FLAGS = {"--checkpoint": ["--text", "Hallo."], "--average": ["--text", "Hallo."],
               "--compare": ["--eval"], "--corpus": ["--eval", "--corpus-format", "tsv"], "--input": []}
OUTPUT_FLAGS = {"--export": [], "--html": ["--text", "Hallo."]}


def path_flags():
    """Every flag of run_translation.py that takes a file (its metavar says FILE, PATH or CHECKPOINT, or it is
    --checkpoint or --corpus)."""
    parser = run_translation.build_parser()
    flags = set()
    for group in parser._action_groups:  # the public parser offers no other way to list its flags
        for action in group._group_actions:
            if action.metavar in ("FILE", "PATH", "CHECKPOINT") or action.dest in ("checkpoint", "corpus"):
                flags.add(action.option_strings[0])
    return flags


def check(flags):
    return commands.check_translation_request(run_translation.parse_args(flags))


def test_every_path_flag_is_in_the_tables():
    assert path_flags() == set(INPUT_FLAGS) | set(OUTPUT_FLAGS)


@pytest.mark.parametrize("flag", sorted(INPUT_FLAGS))
def test_an_input_that_is_a_folder_or_missing_is_refused(flag, tmp_path):
    for path, error in ((str(tmp_path), IsADirectoryError), (str(tmp_path / "missing.pth"), FileNotFoundError)):
        with pytest.raises(error, match=f"^{flag} "):
            check([*INPUT_FLAGS[flag], flag, path])


@pytest.mark.parametrize("flag", ["--checkpoint", "--average", "--compare", "--corpus"])
def test_a_flag_that_reads_a_file_twice_refuses_standard_input(flag):
    with pytest.raises(ValueError, match="needs a regular file"):
        check([*INPUT_FLAGS[flag], flag, "/dev/stdin"])


@pytest.mark.parametrize("name", ["-", "/dev/stdin"])
def test_input_reads_standard_input_by_either_name(name):
    args = run_translation.parse_args(["--input", name])
    assert commands.check_translation_request(args) is None and args.input == "-"


def test_input_that_is_also_standard_output_is_refused(tmp_path):
    """'--input f.txt >> f.txt' would translate its own output without end."""
    german = tmp_path / "german.txt"
    german.write_text("Guten Morgen.\n", encoding="utf-8")
    with open(german, "a") as output:
        result = subprocess.run([sys.executable, os.path.join(REPOSITORY, "run_translation.py"), "--input",
                                 str(german)], stdout=output, stderr=subprocess.PIPE, text=True)
    assert result.returncode == 1 and "is also standard output" in result.stderr
    assert german.read_text(encoding="utf-8") == "Guten Morgen.\n"


@pytest.mark.parametrize("flag", sorted(OUTPUT_FLAGS))
def test_an_output_is_never_an_input_nor_a_shipped_file(flag, tmp_path):
    with pytest.raises(ValueError, match=f"^{flag} .* is also an input"):
        check([*OUTPUT_FLAGS[flag], "--checkpoint", SHIPPED_CHECKPOINT, flag, SHIPPED_CHECKPOINT, "--force"]
              if flag == "--html" else [flag, SHIPPED_CHECKPOINT, "--force"])
    everyday = os.path.join(REPOSITORY, "data", "everyday.tsv")
    with pytest.raises(ValueError, match="a file the project ships in data/"):
        check([*OUTPUT_FLAGS[flag], flag, everyday, "--force"])


@pytest.mark.parametrize("flag", sorted(OUTPUT_FLAGS))
def test_an_existing_output_needs_force(flag, tmp_path):
    existing = tmp_path / "mine.txt"
    existing.write_text("my notes\n")
    with pytest.raises(FileExistsError, match=f"^{flag} .* already exists: add --force"):
        check([*OUTPUT_FLAGS[flag], flag, str(existing)])
    check([*OUTPUT_FLAGS[flag], flag, str(existing), "--force"])
    assert existing.read_text() == "my notes\n"  # checked, not yet written


def test_the_default_explorer_page_is_the_scripts_own_and_is_replaced(tmp_path):
    page = tmp_path / "attention_explorer_text.html"
    page.write_text("an earlier page")
    args = run_translation.parse_args(["--text", "Hallo.", "--html", "--figures-dir", str(tmp_path)])
    commands.check_translation_request(args)
    assert args.html == str(page)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
@pytest.mark.skipif(not os.path.isfile(SHIPPED_CHECKPOINT), reason="no shipped checkpoint in data/")
def test_a_device_output_is_written_in_place_not_replaced(capsys):
    run_translation.main(run_translation.parse_args(["--text", "Hallo.", "--html", "/dev/null"]))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    run_translation.main(run_translation.parse_args(["--export", "/dev/null", "--force"]))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_average_refuses_one_checkpoint_twice(tmp_path):
    link = tmp_path / "again.pth"
    link.symlink_to(SHIPPED_CHECKPOINT)
    with pytest.raises(ValueError, match="more than once"):
        check(["--export", str(tmp_path / "x.pth"), "--average", SHIPPED_CHECKPOINT, str(link)])


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
