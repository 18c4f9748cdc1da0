"""The "tracebacks that should be one line" of issue 15, each through the real `i3d` command
line: exactly one line on stderr and a non-zero exit."""

import shutil

import pytest

from tests.support.cli import one_line_error
from tests.support.videos import write_indexed_video


@pytest.fixture
def video(tmp_path):
  return write_indexed_video(tmp_path / "v.avi", 5, 25)


def test_nan_trim_window(video, checkpoint_dir, capsys):
  err = one_line_error(capsys, "predict", video, "--time_start", "nan", "--eval_type", "rgb",
                       "--checkpoint_dir", checkpoint_dir)
  assert "empty trim window [nan, None]" in err


def test_checkpoint_dir_that_is_a_file(video, tmp_path, capsys):
  (tmp_path / "file").write_text("")
  err = one_line_error(capsys, "predict", video, "--eval_type", "rgb", "--checkpoint_dir",
                       tmp_path / "file")
  assert "checkpoint folder" in err and "is a file" in err


def test_unwritable_checkpoint_dir(video, tmp_path, capsys, monkeypatch):
  (tmp_path / "file").write_text("")
  monkeypatch.setenv("I3D_CHECKPOINT_DIR", str(tmp_path / "file" / "checkpoints"))
  err = one_line_error(capsys, "predict", video, "--eval_type", "rgb")
  assert "cannot write to" in err


def test_a_flow_checkpoint_in_the_rgb_folder_is_caught_at_load(video, tmp_path, capsys,
                                                               checkpoint_dir):
  shutil.copytree(checkpoint_dir / "flow_imagenet", tmp_path / "mixed" / "rgb_imagenet")
  err = one_line_error(capsys, "predict", video, "--eval_type", "rgb", "--checkpoint_dir",
                       tmp_path / "mixed")
  assert "is not 'rgb_imagenet': it takes 2 input channels" in err


def test_checkpoint_download_from_a_file_url(tmp_path, capsys):
  capsys.readouterr()
  with pytest.raises(SystemExit) as exit_:
    from i3d.cli import main as cli
    cli._main(cli._parse(["i3d", "download", "rgb_imagenet", "--checkpoint_dir", str(tmp_path),
                          "--base_url", f"file://{tmp_path}"]))
  out, err = capsys.readouterr()
  assert exit_.value.code not in (0, None) and "Traceback" not in out + err
  assert "rgb_imagenet: failed: cannot download file://" in out and "use an http(s) URL" in out


def test_preprocess_into_a_read_only_place(video, capsys):
  err = one_line_error(capsys, "preprocess", video, "--flow_backend", "opencv", "--output",
                       "/sys/i3d-test/v_inputs.npz")
  assert "cannot write" in err


def test_export_onto_a_file_or_a_non_empty_folder(tmp_path, capsys, checkpoint_dir):
  (tmp_path / "file").write_text("")
  err = one_line_error(capsys, "export", "--output", tmp_path / "file", "--eval_type", "rgb",
                       "--checkpoint_dir", checkpoint_dir)
  assert "is a file" in err
  (tmp_path / "mine").mkdir()
  (tmp_path / "mine" / "notes.txt").write_text("keep")
  err = one_line_error(capsys, "export", "--output", tmp_path / "mine", "--eval_type", "rgb",
                       "--checkpoint_dir", checkpoint_dir)
  assert "is not empty; pass --overwrite" in err
  err = one_line_error(capsys, "export", "--output", tmp_path / "mine", "--overwrite",
                       "--eval_type", "rgb", "--checkpoint_dir", checkpoint_dir)
  assert "is not an export of this toolkit" in err
  assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
  # A folder that merely holds a saved_model.pb is no export either.
  (tmp_path / "mine" / "saved_model.pb").write_bytes(b"")
  err = one_line_error(capsys, "export", "--output", tmp_path / "mine", "--overwrite",
                       "--eval_type", "rgb", "--checkpoint_dir", checkpoint_dir)
  assert "is not an export of this toolkit" in err
  assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt", "saved_model.pb"]


def test_export_onto_a_link_to_an_empty_folder(tmp_path, capsys, checkpoint_dir):
  (tmp_path / "empty").mkdir()
  (tmp_path / "link").symlink_to(tmp_path / "empty")
  err = one_line_error(capsys, "export", "--output", tmp_path / "link", "--eval_type", "rgb",
                       "--checkpoint_dir", checkpoint_dir)
  assert "is a symbolic link" in err
  assert not list((tmp_path / "empty").iterdir())


def test_export_into_a_read_only_place(capsys, checkpoint_dir):
  err = one_line_error(capsys, "export", "--output", "/sys/i3d-test/model", "--eval_type", "rgb",
                       "--checkpoint_dir", checkpoint_dir)
  assert "cannot write the SavedModel to /sys/i3d-test/model" in err
