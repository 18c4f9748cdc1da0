"""One CLI: help for every subcommand with its defaults, one spelling of negations, errors that
name the subcommand, --offline naming every missing file. In-process through the real parser
unless start-up output is what is tested."""

import argparse
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import i3d
from i3d.cli import main as cli
from i3d.model.registry import CHECKPOINTS


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
  """`i3d ARGV...` as the console script runs it: (exit status, stdout, stderr)."""
  with pytest.raises(SystemExit) as exit_:
    cli._main(cli._parse(["i3d", *map(str, argv)]))
  out = capsys.readouterr()
  return exit_.value.code, out.out, out.err


def subcommands(parser=None, prefix="i3d"):
  """(prog, help, parser) of every subcommand, nested ones included."""
  parser = parser or cli._parser()
  for action in parser._actions:
    if isinstance(action, argparse._SubParsersAction):
      helps = {a.dest: a.help for a in action._choices_actions}
      for name, sub in action.choices.items():
        yield f"{prefix} {name}", helps.get(name), sub
        yield from subcommands(sub, f"{prefix} {name}")


def test_every_subcommand_has_a_one_line_lowercase_description():
  found = list(subcommands())
  assert {prog for prog, _, _ in found} >= {"i3d predict", "i3d kinetics subset",
                                            "i3d kinetics download", "i3d download"}
  for prog, text, _ in found:
    assert text and "\n" not in text, prog
    proper_noun = text.split()[0].split("-")[0] in ("Kinetics", "I3D", "Fréchet")
    assert (text[0].islower() or proper_noun) and not text.endswith("."), prog


def test_help_shows_defaults_and_one_spelling_of_negations():
  for prog, _, parser in subcommands():
    text = parser.format_help()
    assert "--helpfull" not in text and "--no-" not in text, prog
  predict = dict((p, s) for p, _, s in subcommands())["i3d predict"].format_help()
  assert "classes per video (default: 5)" in " ".join(predict.split())
  assert "--noimagenet_pretrained" in predict and "(default: joint)" in predict
  for spelling in ("--noimagenet_pretrained", "--no-imagenet_pretrained"):
    assert not cli._parse(["i3d", "export", "--output", "x", spelling]).imagenet_pretrained
  assert cli._parse(["i3d", "export", "--output", "x"]).imagenet_pretrained


def test_usage_errors_name_the_subcommand_and_show_its_usage(capsys):
  status, _, err = run_cli(capsys, "kinetics", "download", "--video_dir", "videos")
  assert status == 2
  lines = err.splitlines()
  assert lines[0].startswith("usage: i3d kinetics download")
  assert lines[-1] == ("i3d kinetics download: error: pass an annotation file of clips to fetch "
                       "from YouTube, or --split to fetch a whole split from the CVDF mirror")


def test_offline_kinetics_download_names_only_its_own_flags(capsys, tmp_path, monkeypatch):
  monkeypatch.setenv("I3D_KINETICS_DIR", str(tmp_path / "cache"))
  status, _, err = run_cli(capsys, "kinetics", "download", "--version", "400", "--split",
                           "validation", "--video_dir", tmp_path / "videos", "--offline")
  assert status == 2 and err.startswith("usage: i3d kinetics download")
  error = err.splitlines()[-1]
  val = tmp_path / "cache" / "400" / "annotations" / "val.csv"
  assert error.startswith("i3d kinetics download: error: cannot fetch the Kinetics-400 "
                          "validation annotations: downloads are off")
  assert f"by hand to {val}" in error and "--annotations" not in error
  assert not (tmp_path / "cache").exists() and not (tmp_path / "videos").exists()
  status, _, err = run_cli(capsys, "kinetics", "subset", "--split", "validation", "--output",
                           tmp_path / "s.csv", "--offline")
  assert status == 2 and "(or pass a copy with --annotations FILE)" in err


def test_download_tries_every_checkpoint_and_reports_each(capsys, tmp_path):
  status, out, err = run_cli(capsys, "download", "rgb_imagenet", "flow_imagenet",
                             "--checkpoint_dir", tmp_path, "--offline")
  assert status == 1
  assert [line.split(":")[0:2] for line in out.splitlines()] == [
      ["rgb_imagenet", " failed"], ["flow_imagenet", " failed"]]
  assert "i3d download: error: 2 of 2 checkpoints failed (rgb_imagenet, flow_imagenet)" in err
  for name in ("rgb_imagenet", "flow_imagenet"):
    assert f"into {tmp_path / name}/:" in err
    assert CHECKPOINTS[name].url("model.ckpt.index") in err
  assert list(tmp_path.iterdir()) == []


def test_offline_predict_names_every_missing_checkpoint(capsys, tmp_path):
  status, _, err = run_cli(capsys, "predict", "clip.mp4", "--checkpoint_dir", tmp_path,
                           "--offline")
  assert status == 2
  assert err.startswith("i3d predict: error: 2 checkpoints missing (rgb_imagenet, "
                        "flow_imagenet):")
  assert "downloads are off" in err and f"into {tmp_path / 'flow_imagenet'}/:" in err


def test_malformed_rows_are_counted_in_words(capsys, tmp_path):
  annotations = tmp_path / "a.csv"
  annotations.write_text("label,youtube_id,time_start,time_end,split\n"
                         "abseiling,aaaaaaaaaaa,1,11,validation\nbroken\n")
  status, _, err = run_cli(capsys, "kinetics", "index", "--annotations", annotations,
                           "--video_dir", tmp_path, "--no_check")
  assert status == 0 and f"{annotations}: 1 malformed row skipped:" in err


def test_commands_start_without_tensorflow_lines(tmp_path):
  """A subprocess, as users run it: only our own line on stderr."""
  result = subprocess.run(
      [sys.executable, "-m", "i3d.cli", "predict", "clip.mp4", "--eval_type", "rgb",
       "--checkpoint_dir", str(tmp_path)], capture_output=True, text=True, timeout=300,
      env={**{k: v for k, v in os.environ.items() if not k.startswith("TF_")},
           "I3D_OFFLINE": "1"})
  assert result.returncode == 2
  assert result.stderr.splitlines()[0].startswith("i3d predict: error: 1 checkpoint missing "
                                                  "(rgb_imagenet)")
  for noise in ("cuInit", "oneDNN", "absl::InitializeLog", "cuda drivers", "I0000", "E0000"):
    assert noise not in result.stderr


def test_version(capsys):
  status, out, _ = run_cli(capsys, "--version")
  assert status == 0 and out.strip() == f"i3d {i3d.__version__}" and i3d.__version__ != ""


def test_offline_and_quiet_are_passed_not_put_in_the_environment(capsys, tmp_path):
  before = dict(os.environ)
  status, _, err = run_cli(capsys, "predict", "clip.mp4", "--eval_type", "rgb",
                           "--checkpoint_dir", tmp_path, "--offline", "--quiet")
  assert status == 2 and "downloads are off" in err
  assert dict(os.environ) == before


def test_joint_without_its_flow_checkpoint_suggests_rgb(capsys, tmp_path, checkpoint_dir):
  shutil.copytree(checkpoint_dir / "rgb_imagenet", tmp_path / "rgb_imagenet")
  status, _, err = run_cli(capsys, "predict", "clip.mp4", "--checkpoint_dir", tmp_path,
                           "--offline")
  assert status == 2
  assert err.splitlines()[0] == ("i3d predict: error: 1 checkpoint missing (flow_imagenet); the "
                                 "RGB one is here: --eval_type rgb classifies without flow:")


def test_preprocess_advice_does_not_suggest_itself(capsys, tmp_path, monkeypatch):
  from i3d.inputs import flow
  from tests.support.servers import write_video
  monkeypatch.setenv("I3D_PROGRESS", "1")
  monkeypatch.setattr(flow, "ESTIMATE_ABOVE_SECONDS", 0.0)  # a tiny clip gets the note too
  monkeypatch.setattr(flow, "opencv_solver",  # the note is under test, not TV-L1: skip its cost
                      lambda params: SimpleNamespace(
                          calc=lambda a, b, out: np.zeros((*a.shape, 2), np.float32)))
  video = write_video(tmp_path / "clip.mp4", frames=4)
  status, _, err = run_cli(capsys, "preprocess", video, "--output", tmp_path / "x.npz",
                           "--flow_backend", "opencv")
  assert status == 0
  [note] = [line for line in err.splitlines() if line.startswith("optical flow:")]
  assert note.endswith(f"faster: {flow.PREPROCESS_ADVICE}") and "i3d preprocess" not in note
