"""Tests of the image scripts' command line (lib/implicit/image_cli.py, plot_attention_on_input.py,
plot_adversarial_example.py): a table of bad values, each refused with one clear line before the model loads, upper
bounds on every number flag (read from the parsers), and the figure never taken for an input."""
import os
import subprocess
import sys

import pytest
from PIL import Image

import plot_adversarial_example
import plot_attention_on_input
from lib import cli
from lib.implicit import vision

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = {"saliency": plot_attention_on_input, "adversarial": plot_adversarial_example}

# (flags, what the one-line message must contain); {folder}, {text}, {empty}, {missing}, {image} are paths made per
# test.
SHARED = [
    (["--threads", "0"], "argument --threads: must be from 1 to 256, got 0"),
    (["--threads", "-3"], "argument --threads: must be from 1 to 256, got -3"),
    (["--threads", "100000"], "argument --threads: must be from 1 to 256, got 100000"),
    (["--threads", "two"], "argument --threads: 'two' is not a whole number"),
    (["--views", "0"], "argument --views: must be from 1 to 10, got 0"),
    (["--views", "11"], "argument --views: must be from 1 to 10, got 11"),
    (["--views", "nan"], "argument --views: 'nan' is not a whole number"),
    (["--max-plot", "0"], "argument --max-plot: must be from 1 to 100, got 0"),
    (["--max-plot", "100000"], "argument --max-plot: must be from 1 to 100, got 100000"),
    (["--samples", "-1", "--imagenet-dir", "{folder}"], "argument --samples: must be from 0 to 99999, got -1"),
    (["--samples", str(10 ** 12), "--imagenet-dir", "{folder}"], "argument --samples: must be from 0 to 99999"),
    (["--samples", "2.5"], "argument --samples: '2.5' is not a whole number"),
    (["--model", "vgg16"], "argument --model: invalid choice: 'vgg16'"),
    (["--photos", "lena"], "argument --photos: invalid choice: 'lena'"),
    (["--out", "{folder}"], "--out {folder} is a folder; give a file name"),
    (["--out", "{text}/figure.png"], "is a file, not a folder"),
    (["--out", "{missing}/figure.png"], "the folder {missing} does not exist; make it first"),
    (["--images", "{image}", "--out", "{image}"], "--out {image} is also an input; write the output to another file"),
    (["--out", "{folder}/figure.txt"], "matplotlib cannot write .txt files"),
    (["--out", ""], "--out is empty"),
    (["--images", "{text}"], "Cannot read {text} as an image: not an image file"),
    (["--images", "{missing}"], "--images {missing} does not exist"),
    (["--images", "{empty}"], "--images {empty} is a folder that holds no image files"),
    (["--imagenet-dir", "{text}"], "--imagenet-dir {text} is a file; give the folder"),
    (["--imagenet-dir", "{missing}"], "--imagenet-dir {missing} does not exist"),
    (["--imagenet-dir", "{empty}", "--samples", "5"], "Sample 5 is not in {empty}: it has 0 classes with images"),
    (["--samples", "3"], "--samples needs --imagenet-dir"),
    (["--weights", "{folder}"], "--weights {folder} is a folder; give a file"),
    (["--weights", "{missing}"], "--weights {missing} does not exist"),
    (["--images", "{many}", "--views", "10"],  # counted before any is decoded: the files are not images at all
     "--images gives 103 images, more than the 102 one run analyses"),
    (["--imagenet-dir", "{folder}", "--views", "10", "--samples", *map(str, range(103))],
     "0 photos and 103 samples with --views 10 make more than the 1024 crops one run analyses"),
]
ADVERSARIAL = [
    (["--epsilon", "-1"], "argument --epsilon: must be at least 0 and at most 255, got -1"),
    (["--epsilon", "1000"], "argument --epsilon: must be at least 0 and at most 255, got 1000"),
    (["--epsilon", "nan"], "argument --epsilon: must be a finite number, got nan"),
    (["--epsilon=-inf"], "argument --epsilon: must be a finite number, got -inf"),
    (["--epsilon", "two"], "argument --epsilon: 'two' is not a number"),
    (["--steps", "0"], "argument --steps: must be from 1 to 1000, got 0"),
    (["--steps", "1000000"], "argument --steps: must be from 1 to 1000, got 1000000"),
    (["--steps", "1e3"], "argument --steps: '1e3' is not a whole number"),
    (["--scale", "0"], "argument --scale: must be above 0 and at most 1e+06, got 0"),
    (["--scale", "-1"], "argument --scale: must be above 0 and at most 1e+06, got -1"),
    (["--scale", "1e9"], "argument --scale: must be above 0 and at most 1e+06, got 1e+09"),
    (["--scale", "inf"], "argument --scale: must be a finite number, got inf"),
    (["--attack", "deepfool"], "argument --attack: invalid choice: 'deepfool'"),
    (["--target", "goldfsh"], "Unknown ImageNet class 'goldfsh'. Did you mean: 'goldfish'"),
    (["--target", "1000"], "Class index 1000 is out of range 0..999"),
    (["--target", "-1"], "Class index -1 is out of range 0..999"),
]
SALIENCY = [
    (["--smooth-samples", "0"], "argument --smooth-samples: must be from 1 to 1000, got 0"),
    (["--smooth-samples", "100000"], "argument --smooth-samples: must be from 1 to 1000, got 100000"),
    (["--noise", "-0.1"], "argument --noise: must be at least 0 and at most 1, got -0.1"),
    (["--noise", "nan"], "argument --noise: must be a finite number, got nan"),
    (["--noise", "1e9"], "argument --noise: must be at least 0 and at most 1, got 1e+09"),
    (["--seed", "-1"], "argument --seed: must be from 0 to 4294967295, got -1"),
    (["--seed", str(2 ** 40)], f"argument --seed: must be from 0 to 4294967295, got {2 ** 40}"),
    (["--method", "integrated"], "argument --method: invalid choice: 'integrated'"),
]
CASES = ([(name, flags, message) for name in SCRIPTS for flags, message in SHARED]
         + [("adversarial", flags, message) for flags, message in ADVERSARIAL]
         + [("saliency", flags, message) for flags, message in SALIENCY])


@pytest.fixture
def paths(tmp_path, monkeypatch):
    """A folder, a text file, an empty folder, a missing path, an image and a folder of 103 files named as images;
    the test runs inside the folder."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not an image\n")
    Image.new("RGB", (8, 8)).save(tmp_path / "cat.png")
    (tmp_path / "many").mkdir()
    for number in range(103):
        (tmp_path / "many" / f"{number}.png").write_text("not decoded\n")
    monkeypatch.chdir(folder)
    return {"folder": str(folder), "text": str(tmp_path / "notes.txt"), "empty": str(tmp_path / "empty"),
            "missing": str(tmp_path / "missing.jpg"), "image": str(tmp_path / "cat.png"),
            "many": str(tmp_path / "many")}


def error_line(script, argv, capsys):
    """Run ``run_main(script.main, script.parse_args(argv))``; return the one line it ends with (checked)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.run_main(script.main, script.parse_args(argv))
    err = capsys.readouterr().err
    code = exit_info.value.code
    assert "Traceback" not in err
    if isinstance(code, str):  # run_main: "error: <message>", printed by Python at exit
        assert err == "" and code.startswith("error: ")
        line = code
    else:  # argparse: the usage, then one line "<prog>: error: <message>", exit 2
        assert code == 2
        line = err.rstrip("\n").splitlines()[-1]
        assert line.startswith(f"{os.path.basename(sys.argv[0])}: error: ")
    assert "\n" not in line
    return line


@pytest.mark.parametrize("name, flags, message", CASES, ids=[f"{c[0]}:{' '.join(c[1])}" for c in CASES])
def test_a_bad_value_ends_with_one_clear_line_before_the_model_loads(name, flags, message, paths, capsys,
                                                                     monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad value was refused")
    monkeypatch.setattr(vision, "load_classifier", no_model)
    argv = [flag.format(**paths) for flag in flags] + ["--no-show"]
    line = error_line(SCRIPTS[name], argv, capsys)
    assert message.format(**paths) in line, line


def number_flags(parser):
    """The option strings of every flag of ``parser`` whose type is one of lib.cli's number ranges."""
    return [action.option_strings[0] for action in parser._actions
            if getattr(action.type, "__name__", "") in ("integer", "number") and action.option_strings]


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_number_flag_has_an_upper_bound_checked_at_parse_time(name, capsys):
    flags = number_flags(SCRIPTS[name].build_parser())
    assert "--views" in flags and "--threads" in flags
    for flag in flags:
        with pytest.raises(SystemExit):
            SCRIPTS[name].parse_args([flag, str(10 ** 15)])
        assert f"argument {flag}: must be" in capsys.readouterr().err


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_figure_saved_among_the_images_is_never_analysed(name, tmp_path, monkeypatch):
    """Run twice with --out inside the --images folder: the second run must not read the first run's figure."""
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "cat.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "figure.png")  # the figure of a first run
    seen = []

    def stop(*args, **kwargs):  # the model is loaded after the images are read: end the run there
        raise KeyboardInterrupt

    monkeypatch.setattr(vision, "load_classifier", stop)
    original = vision.file_items
    monkeypatch.setattr(vision, "file_items", lambda paths, exclude=(), limit=None:
                        seen.extend(original(paths, exclude, limit)) or seen)
    args = SCRIPTS[name].parse_args(["--images", str(tmp_path / "photos"), "--out",
                                     str(tmp_path / "photos" / "figure.png"), "--no-show", "--force"])
    with pytest.raises(KeyboardInterrupt):
        SCRIPTS[name].main(args)
    assert [item.name for item in seen] == ["cat.png"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_flag_is_documented(name):
    parser = SCRIPTS[name].build_parser()
    assert not [action.dest for action in parser._actions if not action.help]
    if name == "adversarial":
        assert "1/255, from 0 to 255" in " ".join(parser.format_help().split())  # the bound --epsilon refuses past


@pytest.mark.parametrize("script, flags, code, message", [
    ("plot_adversarial_example.py", ["--epsilon", "-1"], 2, "argument --epsilon: must be at least 0 and at most 255"),
    ("plot_attention_on_input.py", ["--out", "."], 1, "error: --out . is a folder; give a file name"),
])
def test_the_scripts_from_another_folder(tmp_path, script, flags, code, message):
    done = subprocess.run([sys.executable, os.path.join(ROOT, script), *flags, "--no-show"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == code and message in done.stderr.splitlines()[-1], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
