"""Tests of lib/training/config.py: TrainConfig (every field documented: type, help text for the command line, range,
resumable or not; bad values refused when the config is made, with the flag's name, by lib.checks as the flags'
range types do; None for unset, and the old spellings of unset in stored configs and on the command line), its
flags, and whether a device computes bfloat16 natively."""
import argparse
import math
import os
import pathlib
import sys
from dataclasses import asdict, fields

import pytest
import torch

import lib.training.config
from lib.cli import FlagTable
from lib.training.config import (TrainConfig, add_flags, cpu_flags, flag, flag_type, native_bfloat16, resumed_config,
                                 without_old_unset)


def test_every_field_has_a_help_text_and_a_range_or_kind():
    for setting in fields(TrainConfig):
        meta = setting.metadata
        assert isinstance(meta["help"], str) and len(meta["help"]) > 10, setting.name
        assert set(meta) == {"type", "help", "low", "high", "low_open", "high_open", "choices", "resumable",
                             "old_unset", "optional"}, setting.name
        assert meta["type"] in (bool, int, float, str) and isinstance(meta["resumable"], bool)
        assert meta["optional"] == (setting.default is None or meta["old_unset"] is not None), setting.name
        assert isinstance(setting.default, meta["type"]) or meta["optional"], setting.name


def test_defaults_are_valid_and_unchanged():
    config = TrainConfig()
    assert (config.lr, config.dropout, config.batch_tokens, config.max_len, config.phrases_per_epoch) == (
        1e-3, 0.1, 2500, 48, 40000)
    assert (config.pre_norm, config.tie_embeddings, config.ffn_dim, config.attention_dropout,
            config.activation_dropout, config.decoder_layerdrop, config.source_word_dropout,
            config.target_word_dropout, config.phrase_tag) == (False, False, None, None, 0.0, 0.0, 0.0, 0.0, False)
    assert (config.joint_vocab_size, config.share_all_embeddings, config.max_minutes) == (None, False, None)
    assert (config.extra_corpus, config.extra_per_epoch, config.extra_sources, config.amp) == (
        None, 100000, None, False)


BAD = [("lr", 0.0, "--lr must be above 0 and at most 10, got 0"), ("lr", -1.0, "--lr must be above 0"),
       ("lr", math.nan, "--lr must be a finite number, got nan"), ("lr", math.inf, "--lr must be a finite number"),
       ("dropout", 1.0, "--dropout must be at least 0 and below 1, got 1"), ("dropout", -0.1, "--dropout must be"),
       ("batch_tokens", 0, "--batch-tokens must be from 1 to 1000000, got 0"),
       ("eval_every", 0, "--eval-every must be"), ("max_steps", 0, "--max-steps must be from 1 to 100000000"),
       ("max_minutes", -1.0, "--max-minutes must be above 0 and at most 1e\\+06"),
       ("batch_tokens", 10**7, "--batch-tokens must be from 1 to 1000000, got 10000000"),
       ("max_len", 2_000_000, "--max-len must be from 1 to 1024, got 2000000"),
       ("label_smoothing", 1.0, "--label-smoothing must be"), ("clip_norm", 0.0, "--clip-norm must be above 0"),
       ("weight_decay", -0.01, "--weight-decay must be at least 0"), ("warmup_steps", -1, "--warmup-steps"),
       ("seed", -1, "--seed must be from 0 to 4294967295, got -1"), ("seed", 2**32, "--seed must be"),
       ("ffn_dim", -1, "--ffn-dim must be from 1 to 65536"), ("ffn_dim", 0, "--ffn-dim must be from 1 to 65536, got 0"),
       ("attention_dropout", 1.0, "--attention-dropout must be at least 0 and below 1, got 1"),
       ("attention_dropout", -1.0, "--attention-dropout must be at least 0 and below 1, got -1"),
       ("max_minutes", 0.0, "--max-minutes must be above 0 and at most 1e\\+06, got 0"),
       ("extra_per_epoch", 0, "--extra-per-epoch must be from 1 to 100000000, got 0"),
       ("extra_sources", 3, "--extra-sources must be a string, got 3"),
       ("activation_dropout", 1.0, "--activation-dropout"), ("decoder_layerdrop", -0.1, "--decoder-layerdrop"),
       ("source_word_dropout", 1.0, "--source-word-dropout"), ("target_word_dropout", 2.0, "--target-word-dropout"),
       ("keep_snapshots", -1, "--keep-snapshots"), ("eval_sentences", 0, "--eval-sentences"),
       ("embed_dim", 0, "--embed-dim must be from 1 to 8192"), ("joint_vocab_size", -1, "--joint-vocab-size must be"),
       ("joint_vocab_size", 4, "--joint-vocab-size must be from 5 to 100000, got 4"),
       ("joint_vocab_size", 0, "--joint-vocab-size must be from 5 to 100000, got 0"),
       ("share_all_embeddings", True, "--share-all-embeddings needs one vocabulary for German and English: add "
        "--joint-vocab-size"), ("de_vocab_size", 4, "--de-vocab-size must be from 5 to 100000"),
       ("lr_schedule", "cosine", "--lr-schedule must be one of inverse-sqrt, linear"),
       ("corpus_format", "csv", "--corpus-format must be one of ding, tsv, iwslt"),
       ("embed_dim", "64", "--embed-dim must be a whole number, got '64'"),
       ("max_steps", 2.5, "--max-steps must be a whole number"),
       ("pre_norm", 1, "--pre-norm must be True or False, got 1"), ("lr", True, "--lr must be a number, got True"),
       ("lr", "0.1", "--lr must be a number, got '0.1'"), ("embed_dim", None, "--embed-dim must be a whole number"),
       ("out_dir", 3, "--out-dir must be a string"), ("device", "gpu", "--device 'gpu' is not a device")]


@pytest.mark.parametrize("name, value, message", BAD, ids=[f"{name}={value!r}" for name, value, _ in BAD])
def test_bad_values_are_refused_naming_the_flag(name, value, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**{name: value})


def test_limits_themselves_are_accepted():
    TrainConfig(lr=1e-12, dropout=0.0, attention_dropout=None, batch_tokens=1, max_minutes=None, keep_snapshots=0,
                ffn_dim=None, seed=2**32 - 1, sentence_repeats=0, phrases_per_epoch=0, warmup_steps=0, enc_layers=0,
                dec_layers=0, eval_every=1, device="cuda:1", extra_per_epoch=None, extra_sources=None)
    TrainConfig(attention_dropout=0.0, decoder_layerdrop=0.99, source_word_dropout=0.5, max_minutes=1e-9, lr=2,
                joint_vocab_size=5, share_all_embeddings=True, ffn_dim=1, extra_per_epoch=1, extra_sources="")


def test_the_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="^--num-heads 3 must divide --embed-dim 256"):
        TrainConfig(num_heads=3)


def test_paths_may_be_path_objects_and_input_files_are_stored_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = TrainConfig(out_dir=pathlib.Path("runs") / "a", corpus=pathlib.Path("corpus.tsv"), extra_corpus="x.tsv",
                         init_from="m.pth")
    assert config.out_dir == os.path.join("runs", "a")  # the run's folder: named each time, as the user wrote it
    assert (config.corpus, config.extra_corpus, config.init_from) == tuple(
        os.path.join(str(tmp_path), name) for name in ("corpus.tsv", "x.tsv", "m.pth"))
    assert TrainConfig(corpus="-").corpus == "-" and TrainConfig().corpus is None


def test_flag_names():
    assert flag("max_steps") == "--max-steps" and flag("lr") == "--lr"


# ---- "unset" is None; what meant unset before ----------------------------------------------------------------------

OLD_UNSET = {"ffn_dim": 0, "joint_vocab_size": 0, "attention_dropout": -1.0, "max_minutes": 0.0, "extra_per_epoch": 0,
             "extra_sources": ""}


def test_the_old_spellings_of_unset_in_a_stored_config_become_none():
    stored = dict(asdict(TrainConfig()), **dict(OLD_UNSET, attention_dropout=-0.5), max_steps=500)
    assert without_old_unset(stored) == dict(asdict(TrainConfig()), max_steps=500, **{name: None for name in OLD_UNSET})
    kept = dict(ffn_dim=96, joint_vocab_size=8000, attention_dropout=0.0, max_minutes=30.0, extra_per_epoch=5,
                extra_sources="games", cooldown_steps=0, keep_snapshots=0, pre_norm=False, unknown=0)
    assert without_old_unset(kept) == kept  # real values, zeros that are not "unset", fields it does not know


def test_a_run_saved_with_the_old_spellings_resumes_with_none(tmp_path):
    saved = dict(asdict(TrainConfig(max_steps=100)), **OLD_UNSET)
    config = resumed_config(saved, {"max_steps": 200, "ffn_dim": None}, tmp_path / "last.pth")
    assert config == TrainConfig(max_steps=200, **{name: None for name in OLD_UNSET})
    with pytest.raises(ValueError, match=r"^--ffn-dim 64: fixed by the run's checkpoint .* \(--ffn-dim None\)"):
        resumed_config(saved, {"ffn_dim": 64}, tmp_path / "last.pth")


# (the working folder of the resume, the overrides, the error (None: it resumes with the paths made absolute))
RELATIVE_RESUMES = [
    ("started", {}, None),
    ("started", {"corpus": "corpus.tsv"}, None),  # the same file, named as it was
    ("elsewhere", {}, r"^--corpus corpus.tsv of the run's checkpoint .*last.pth is relative to the folder the run was "
                      r"started in, and .*elsewhere/corpus.tsv does not exist: resume from that folder"),
    ("elsewhere", {"corpus": "corpus.tsv"}, r"^--corpus corpus.tsv of the run's checkpoint .*relative"),
    ("elsewhere", {"corpus": "../started/corpus.tsv"}, r"^--corpus corpus.tsv of the run's checkpoint .*relative"),
    ("elsewhere", {"max_steps": 9, "extra_corpus": "../started/x.tsv"}, r"^--corpus corpus.tsv of the run's"),
    ("started", {"extra_corpus": "../elsewhere/y.tsv"}, None),  # a resumable input given anew
]


@pytest.mark.parametrize("folder, overrides, error", RELATIVE_RESUMES)
def test_a_run_stored_with_relative_paths_resumes_from_the_folder_it_was_started_in(tmp_path, monkeypatch, folder,
                                                                                    overrides, error):
    for name in ("started", "elsewhere"):
        (tmp_path / name).mkdir()
    for name in ("corpus.tsv", "x.tsv", "m.pth"):
        (tmp_path / "started" / name).write_text("")
    saved = dict(asdict(TrainConfig()), corpus="corpus.tsv", extra_corpus="x.tsv", init_from="m.pth")  # an old run
    monkeypatch.chdir(tmp_path / folder)
    if error:
        with pytest.raises(ValueError, match=error):
            resumed_config(saved, overrides, "run/last.pth")
    else:
        config = resumed_config(saved, overrides, "run/last.pth")
        extra = "elsewhere/y.tsv" if "extra_corpus" in overrides else "started/x.tsv"
        assert (config.corpus, config.extra_corpus, config.init_from) == tuple(
            str(tmp_path / name) for name in ("started/corpus.tsv", extra, "started/m.pth"))


@pytest.mark.parametrize("name, text, value", [("ffn_dim", "0", None), ("ffn_dim", "96", 96),
                                               ("attention_dropout", "-1", None), ("attention_dropout", "-0.5", None),
                                               ("attention_dropout", "0", 0.0), ("max_minutes", "0", None),
                                               ("max_minutes", "2.5", 2.5), ("joint_vocab_size", "0", None),
                                               ("extra_per_epoch", "0", None), ("extra_sources", "", None),
                                               ("extra_sources", "games", "games"), ("max_steps", "7", 7),
                                               ("lr", "2e-4", 2e-4), ("out_dir", "runs/a", "runs/a")])
def test_each_flag_reads_its_value_and_the_old_spelling_of_unset_as_none(name, text, value):
    setting = next(setting for setting in fields(TrainConfig) if setting.name == name)
    assert flag_type(setting)(text) == value


@pytest.mark.parametrize("name, text, message", [("ffn_dim", "-1", "must be from 1 to 65536, got -1"),
                                                 ("ffn_dim", "1.5", "'1.5' is not a whole number"),
                                                 ("attention_dropout", "1", "must be at least 0 and below 1, got 1"),
                                                 ("attention_dropout", "nan", "must be a finite number, got nan"),
                                                 ("max_minutes", "-3", "must be above 0 and at most 1e\\+06, got -3"),
                                                 ("joint_vocab_size", "4", "must be from 5 to 100000, got 4"),
                                                 ("lr", "0", "must be above 0 and at most 10, got 0"),
                                                 ("seed", "-1", "must be from 0 to 4294967295, got -1")])
def test_each_flag_refuses_values_out_of_the_fields_range(name, text, message):
    setting = next(setting for setting in fields(TrainConfig) if setting.name == name)
    with pytest.raises(argparse.ArgumentTypeError, match="^" + message.replace("(", r"\(") + "$"):
        flag_type(setting)(text)


def test_add_flags_gives_each_field_not_skipped_a_flag_absent_unless_given():
    table = FlagTable()
    parser = argparse.ArgumentParser(prog="demo", argument_default=argparse.SUPPRESS)
    add_flags(parser, table, skip=("device", "amp"))
    names = {setting.name for setting in fields(TrainConfig)} - {"device", "amp"}
    assert set(table.option) == names and all(table.option[name] == flag(name) for name in names)
    args, given = table.parse(parser, ["--pre-norm", "--ffn-dim", "0", "--no-extra-tag", "--lr", "0.5"])
    assert vars(args) == {"pre_norm": True, "ffn_dim": None, "extra_tag": False, "lr": 0.5}
    assert list(given) == ["lr", "pre_norm", "ffn_dim", "extra_tag"]  # in the order of the fields
    text = " ".join(parser.format_help().split())
    assert "--compile, --no-compile torch.compile the model (default False)" in text
    assert ("--max-minutes MAX_MINUTES stop after this many minutes of training (None or 0: no limit) (default "
            "None)") in text
    assert "--lr-schedule {inverse-sqrt,linear}" in text and "--device" not in text


# ---- bfloat16 where the processor computes it natively --------------------------------------------------------------

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu vme sse sse2 avx avx2 avx512f {extra}
bogomips\t: 4800.00

processor\t: 1
flags\t\t: fpu vme sse sse2 avx avx2 avx512f {extra}
"""


@pytest.mark.parametrize("extra, native", [("", False), ("avx512_bf16", True), ("amx_tile amx_bf16", True),
                                           ("avx512_fp16 avx512_vnni", False), ("avx512_bf16x", False)])
def test_a_cpu_computes_bfloat16_natively_with_avx512_bf16_or_amx_bf16(monkeypatch, extra, native):
    monkeypatch.setattr(lib.training.config, "read_cpuinfo", lambda: CPUINFO.format(extra=extra))
    assert native_bfloat16("cpu") is native and native_bfloat16(torch.device("cpu")) is native
    assert {"fpu", "avx512f"} <= cpu_flags() and "GenuineIntel" not in cpu_flags()


def test_without_proc_cpuinfo_no_cpu_computes_bfloat16_natively(monkeypatch):
    monkeypatch.setattr(lib.training.config, "read_cpuinfo", lambda: "")  # macOS, Windows
    assert cpu_flags() == set() and native_bfloat16("cpu") is False


def test_a_cuda_device_asks_torch(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert native_bfloat16("cuda") is False and native_bfloat16("cuda:1") is False
    monkeypatch.setattr(lib.training.config, "read_cpuinfo", lambda: "flags : amx_bf16")
    assert native_bfloat16("meta") is False  # neither a CPU nor a GPU


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
