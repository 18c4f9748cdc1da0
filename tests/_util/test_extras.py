"""Optional dependencies: without an extra, the command that needs it says which to install."""

import json
import subprocess
import sys
import textwrap

from tests.support.clips import REPO

# Runs `i3d` commands in a Python where the extras' modules cannot be imported, as after a plain
# `pip install i3d`: a finder ahead of all others refuses them.
WITHOUT_EXTRAS = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = {"apache_beam", "matplotlib", "yt_dlp", "imageio_ffmpeg", "tensorflow_hub"}
    class Missing(importlib.abc.MetaPathFinder):
      def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
          raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
    sys.meta_path.insert(0, Missing())
    from i3d.cli import main
    for argv in sys.argv[1:]:
      try:
        main._main(main._parse(["i3d", *argv.split("|")]))
      except SystemExit as e:
        print(f"exit {e.code}", file=sys.stderr, flush=True)
""")


def test_commands_without_their_extras_name_the_extra(tmp_path):
  (tmp_path / "a.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                  "abseiling,aaaaaaaaaaa,0,10,val\n")
  (tmp_path / "v").mkdir()
  run = tmp_path / "run"
  run.mkdir()
  (run / "metrics.json").write_text(json.dumps({
      "eval_type": "rgb", "protocol": "released", "top1": 1.0, "top5": 1.0,
      "mean_class_accuracy": 1.0, "challenge_error": 0.0, "num_videos": 1, "num_missing": 0,
      "num_failed": 0, "per_class_accuracy": {"abseiling": 1.0},
      "per_class_videos": {"abseiling": 1}, "confused_pairs": [],
      "confusion": {"classes": [], "counts": []}, "missing": [], "failed": []}))
  commands = [
      f"evaluate|--annotations|{tmp_path / 'a.csv'}|--video_dir|{tmp_path / 'v'}|--output_dir|"
      f"{tmp_path / 'out'}|--runner|DirectRunner",
      f"kinetics|download|{tmp_path / 'a.csv'}|--video_dir|{tmp_path / 'clips'}",
      f"report|{run}"]
  result = subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, *commands], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(REPO), "HOME": str(tmp_path),
                               "PATH": "/usr/bin:/bin"})
  lines = result.stderr.splitlines()
  assert "Traceback" not in result.stderr, result.stderr
  assert ('i3d evaluate: error: --runner (Apache Beam pipelines) needs apache_beam, which is not '
          'installed: pip install "i3d[beam]"') in lines
  assert ('i3d kinetics download: error: downloading Kinetics clips from YouTube needs yt_dlp, '
          'which is not installed: pip install "i3d[kinetics]"') in lines
  assert (f'note: no plots in {run}: matplotlib is not installed (pip install "i3d[report]")'
          in lines)
  assert [line for line in lines if line.startswith("exit")] == ["exit 2", "exit 2", "exit 0"]
  assert "# Evaluation: rgb, released" in result.stdout
  assert not list(run.glob("*.png")) and (run / "summary.md").exists()
