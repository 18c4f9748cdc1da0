"""The shared classifier flags reach the model: every command that runs the network takes
--precision and loads its classifier in that precision."""

import importlib

import pytest

import i3d
from i3d import kinetics
from i3d.classify import classifier as classifier_module
from i3d.cli import main as cli_main
from i3d.embed import features as features_module
from tests.support.sample_script import run_sample


class Reached(Exception):
  """Raised by the spy once the command asked for its classifier."""


def spy(calls: list):
  """A load_classifier / load_extractor that records its keyword arguments, then stops the
  command."""
  def load(*args, **kwargs):
    calls.append(kwargs)
    raise Reached
  return load


def commands_with_precision() -> dict:
  """{command: its argparse parser} of every subcommand that runs a loaded classifier with
  --precision (`i3d train`'s --precision is its training step's: tests/train/test_step.py)."""
  subparsers = next(a for a in cli_main._parser()._actions if a.dest == "command")
  return {name: parser for name, parser in subparsers.choices.items()
          if name != "train" and any("--precision" in a.option_strings for a in parser._actions)}


def cheap_args(command: str, tmp_path) -> list[str]:
  """The required arguments of `command`, pointing at nothing that takes long to read."""
  annotations = kinetics.write_annotations(
      [kinetics.Clip("abcdefghijk", 0, 10, "validation", "abseiling")], tmp_path / "val.csv")
  required = {"predict": ["video.mp4"], "export": ["--output", str(tmp_path / "model")],
              "evaluate": ["--annotations", str(annotations), "--video_dir", str(tmp_path),
                           "--output_dir", str(tmp_path / "run")],
              "features": ["video.mp4", "--output_dir", str(tmp_path / "features")]}
  assert command in required, f"add the arguments of a cheap `i3d {command}` run here"
  return required[command]


def test_every_command_running_the_network_has_the_flag():
  assert {"predict", "evaluate", "export", "features"} <= set(commands_with_precision())


@pytest.mark.parametrize("command", sorted(commands_with_precision()))
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_precision_flag_reaches_the_classifier(command, precision, tmp_path, monkeypatch,
                                               checkpoint_dir):
  calls: list = []
  monkeypatch.setattr(classifier_module, "load_classifier", spy(calls))
  monkeypatch.setattr(features_module, "load_extractor", spy(calls))
  args = cli_main._parse(["i3d", command, *cheap_args(command, tmp_path), "--eval_type", "rgb",
                          "--checkpoint_dir", str(checkpoint_dir), "--precision", precision])
  with pytest.raises(Reached):
    args.run(args)
  assert [c["precision"] for c in calls] == [precision]


def test_unknown_precision_is_refused_by_the_parser(capsys):
  with pytest.raises(SystemExit):
    cli_main._parse(["i3d", "export", "--output", "x", "--precision", "int8"])
  assert "invalid choice: 'int8'" in capsys.readouterr().err


def test_evaluate_sample_passes_the_flag(checkpoint_dir, monkeypatch):
  calls: list = []
  monkeypatch.setattr(i3d, "load_classifier", spy_all(calls))
  with pytest.raises(Reached):
    run_sample("--eval_type", "rgb", "--precision", "bfloat16", "--checkpoint_dir",
               str(checkpoint_dir))
  assert [kwargs["precision"] for _, kwargs in calls] == ["bfloat16"]


@pytest.mark.parametrize("command, module, run, loader", [
    ("evaluate", "i3d.pipelines.evaluate", "evaluate",
     ("i3d.pipelines.evaluate", "load_classifier")),
    ("features", "i3d.pipelines.features", "extract", ("i3d.embed.features", "load_extractor"))])
def test_precision_flag_reaches_the_beam_workers(command, module, run, loader, tmp_path,
                                                 monkeypatch, checkpoint_dir):
  pipeline = importlib.import_module(module)
  specs: list = []

  def pipeline_run(spec, *args, **kwargs):
    specs.append(spec)
    raise Reached
  monkeypatch.setattr(pipeline, run, pipeline_run)
  args = cli_main._parse(["i3d", command, *cheap_args(command, tmp_path), "--runner",
                          "DirectRunner", "--eval_type", "rgb", "--precision", "bfloat16",
                          "--checkpoint_dir", str(checkpoint_dir), "--rgb_checkpoint",
                          "rgb_tfhub"])
  with pytest.raises(Reached):
    args.run(args)
  assert [s.precision for s in specs] == ["bfloat16"]
  assert dict(specs[0].checkpoints) == {"rgb": "rgb_tfhub"}
  loaded: list = []  # what each worker runs
  monkeypatch.setattr(importlib.import_module(loader[0]), loader[1], spy(loaded))
  with pytest.raises(Reached):
    specs[0].load()
  assert [c["precision"] for c in loaded] == ["bfloat16"]
  if command == "evaluate":
    assert loaded[0]["rgb_checkpoint"] == "rgb_tfhub"


def spy_all(calls: list):
  """A loader that records its positional and keyword arguments, then stops the command."""
  def load(*args, **kwargs):
    calls.append((args, kwargs))
    raise Reached
  return load


def _chosen(call) -> dict:
  """{stream: checkpoint} a load_classifier or load_extractor call asked for."""
  args, kwargs = call
  if "rgb_checkpoint" in kwargs:
    from i3d.model.streams import choose_checkpoints
    return choose_checkpoints(args[0] if args else kwargs["eval_type"],
                              kwargs.get("imagenet_pretrained", True), kwargs["rgb_checkpoint"],
                              kwargs["flow_checkpoint"])
  return dict(args[0])


@pytest.mark.parametrize("command", sorted(commands_with_precision()))
def test_stream_checkpoint_flags_reach_the_loader(command, tmp_path, monkeypatch, checkpoint_dir):
  calls: list = []
  monkeypatch.setattr(classifier_module, "load_classifier", spy_all(calls))
  monkeypatch.setattr(features_module, "load_extractor", spy_all(calls))
  flow = str(checkpoint_dir / "flow_scratch")
  args = cli_main._parse(["i3d", command, *cheap_args(command, tmp_path), "--checkpoint_dir",
                          str(checkpoint_dir), "--rgb_checkpoint", "rgb_tfhub",
                          "--flow_checkpoint", flow])
  with pytest.raises(Reached):
    args.run(args)
  assert [_chosen(c) for c in calls] == [{"rgb": "rgb_tfhub", "flow": flow}]


def test_a_checkpoint_for_a_stream_the_eval_type_lacks_is_one_line(capsys, tmp_path):
  from tests.cli.test_main import run_cli
  status, _, err = run_cli(capsys, "predict", "clip.mp4", "--eval_type", "rgb",
                           "--flow_checkpoint", "flow_imagenet", "--checkpoint_dir", tmp_path)
  assert status == 2
  assert err == ("i3d predict: error: a flow checkpoint was given but --eval_type rgb has no "
                 "flow stream; use --eval_type flow or joint\n")


def test_fvd_embeds_with_the_tfhub_weights_unless_told(tmp_path, monkeypatch):
  calls: list = []
  monkeypatch.setattr(classifier_module, "load_classifier", spy_all(calls))
  for extra, expected in (([], "rgb_tfhub"), (["--rgb_checkpoint", "rgb_imagenet"],
                                              "rgb_imagenet")):
    args = cli_main._parse(["i3d", "fvd", "--real", str(tmp_path), "--generated",
                            str(tmp_path), *extra])
    monkeypatch.setattr("i3d.embed.sources.list_clips", lambda path: [])
    with pytest.raises(Reached):
      args.run(args)
    assert calls.pop()[1]["rgb_checkpoint"] == expected


def test_evaluate_sample_passes_the_stream_checkpoints(checkpoint_dir, monkeypatch):
  calls: list = []
  monkeypatch.setattr(i3d, "load_classifier", spy_all(calls))
  flow = str(checkpoint_dir / "flow_scratch")
  with pytest.raises(Reached):
    run_sample("--rgb_checkpoint", str(checkpoint_dir / "rgb_scratch"), "--flow_checkpoint",
               flow, "--checkpoint_dir", str(checkpoint_dir))
  assert [(k["rgb_checkpoint"], k["flow_checkpoint"]) for _, k in calls] == [
      (str(checkpoint_dir / "rgb_scratch"), flow)]
