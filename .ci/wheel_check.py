"""The install check: the built wheel works where there is no clone.

Builds the wheel from a copy of the tracked sources, installs it into a fresh virtual
environment and, from a temporary folder outside the repository with its own home and cache,
runs the `i3d` command as a user would:

- `i3d --version` and `i3d --help`; the package comes from the virtual environment;
- `i3d predict` on a generated clip with format-exact checkpoints (the packaged label map names
  the classes), and without `--checkpoint_dir` the per-user checkpoint folder is the one named,
  with no folder left behind by the failed offline attempt;
- `i3d kinetics subset` with the packaged Kinetics-400 label map;
- `i3d evaluate` on Apache Beam as on a cluster: Beam's Python job service (PortableRunner,
  `--job_endpoint embed`) launched from the source tree, workers in an EXTERNAL worker pool
  started from the virtual environment that holds only the wheel, on localhost. Its outputs must
  equal the single-process run's.

The virtual environment is made with `--system-site-packages` and the wheel installed with
`--no-deps`: the dependencies (TensorFlow, Apache Beam, ...) are those already installed for
the tests, since downloading TensorFlow again would take minutes of the test budget. What the
wheel itself must hold (the package, its data, its entry point) comes only from the wheel: the
check fails if `i3d` is imported from anywhere but the virtual environment.

    python3 .ci/wheel_check.py [--keep]      # --keep: leave the temporary folder for a look
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INDEX = REPO / "tests" / "fixtures" / "checkpoint_index" / "rgb_imagenet" / "model.ckpt"
LABELS = {"abseiling", "playing cricket"}


def step(message: str) -> None:
  print(f"wheel check: {message}", flush=True)


def run(command: list, *, env: dict, cwd: Path, ok: bool = True,
        timeout: float = 600) -> subprocess.CompletedProcess:
  """Runs a command; with `ok`, a non-zero exit fails the check showing its output."""
  result = subprocess.run([str(c) for c in command], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
  if ok and result.returncode != 0:
    raise SystemExit(f"wheel check: failed: {' '.join(map(str, command))} exited "
                     f"{result.returncode}\n{result.stdout}\n{result.stderr}")
  return result


def expect(condition: bool, message: str) -> None:
  if not condition:
    raise SystemExit(f"wheel check: failed: {message}")


def build_wheel(work: Path) -> Path:
  """The wheel of the tracked sources, built from a copy so the clone gains no build folders."""
  listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
  source = work / "source"
  for name in listed.stdout.decode().split("\0"):
    if name and (REPO / name).is_file():
      (source / name).parent.mkdir(parents=True, exist_ok=True)
      shutil.copy2(REPO / name, source / name)
  subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "dist",
                  source], check=True)
  [wheel] = (work / "dist").glob("i3d-*.whl")
  names = zipfile.ZipFile(wheel).namelist()
  expect({"i3d/data/label_map.txt", "i3d/data/label_map_600.txt", "i3d/data/label_map_700.txt",
          "i3d/data/v_CricketShot_g04_c01_rgb.gif", "i3d/py.typed"} <= set(names),
         f"{wheel.name} lacks the package data")
  expect(all(n.startswith(("i3d/", "i3d-")) for n in names),
         f"{wheel.name} holds files outside the package: "
         f"{[n for n in names if not n.startswith(('i3d/', 'i3d-'))][:5]}")
  return wheel


def user_env(work: Path, venv: Path | None) -> dict:
  """A user's environment: no PYTHONPATH, no I3D_ variables, a home and cache of its own."""
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("I3D_", "PYTHON", "XDG_", "VIRTUAL_ENV"))}
  env.update(HOME=str(work / "home"), XDG_CACHE_HOME=str(work / "home" / ".cache"),
             MPLCONFIGDIR=str(work / "matplotlib"), I3D_XLA_CACHE_DIR="")
  if venv is not None:
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv))
  return env


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def check_commands(venv: Path, work: Path, wheel: Path) -> dict:
  """The `i3d` command from the wheel, outside the repository."""
  env, cwd = user_env(work, venv), work / "user"
  cwd.mkdir()
  python = venv / "bin" / "python"
  where = run([python, "-c", "import i3d; print(i3d.__file__, i3d.__version__)"], env=env,
              cwd=cwd).stdout.split()
  expect(Path(where[0]).is_relative_to(venv), f"i3d was imported from {where[0]}, not the wheel")
  version = run(["i3d", "--version"], env=env, cwd=cwd).stdout.strip()
  expect(version == f"i3d {where[1]}" and where[1] in wheel.name, f"i3d --version: {version}")
  expect("predict" in run(["i3d", "--help"], env=env, cwd=cwd).stdout, "i3d --help")
  step(f"{version} from {Path(where[0]).parent}")

  run([python, "-c", "import sys; from pathlib import Path; from i3d import testing; "
       "testing.write_format_exact_checkpoint(sys.argv[1], Path('ck/rgb_imagenet')); "
       "testing.write_validation_set(Path('set'), [('aaaaaaaaaaa', 'abseiling', 'generated'), "
       "('bbbbbbbbbbb', 'playing cricket', 'generated'), ('ccccccccccc', 'abseiling', "
       "'generated')], seconds=0.6, size=(96, 72))", INDEX], env=env, cwd=cwd)
  clip = next((cwd / "set" / "videos").rglob("aaaaaaaaaaa_*.mp4"))
  [predicted] = json.loads(run(["i3d", "predict", clip, "--eval_type", "rgb",
                                "--checkpoint_dir", "ck", "--offline", "--json"], env=env,
                               cwd=cwd).stdout)
  labels = (venv_data(python, env, cwd) / "label_map.txt").read_text().splitlines()
  expect([c["label"] for c in predicted["top_k"]] == [labels[c["index"]]
                                                      for c in predicted["top_k"]],
         f"predict's labels are not the packaged label map's: {predicted}")
  step(f"i3d predict: {predicted['top_k'][0]['label']!r} ({predicted['frames']} frames)")

  missing = run(["i3d", "predict", clip, "--eval_type", "rgb", "--offline"], env=env, cwd=cwd,
                ok=False)
  default = work / "home" / ".cache" / "i3d" / "checkpoints" / "rgb_imagenet"
  expect(missing.returncode == 2 and f"not in {default}" in missing.stderr,
         f"the default checkpoint folder is not {default}: {missing.stderr}")
  expect(not (work / "home" / ".cache" / "i3d").exists(), "a failed offline attempt left folders")
  expect(not any(venv.rglob("site-packages/checkpoints")), "checkpoints went into site-packages")
  step("i3d predict without --checkpoint_dir names ~/.cache/i3d/checkpoints, creates nothing")

  subset = run(["i3d", "kinetics", "subset", "--version", "400", "--annotations",
                "set/kinetics-400_val.csv", "--classes", "playing cricket", "--output",
                "subset.csv"], env=env, cwd=cwd).stdout
  expect(subset.startswith("wrote 1 clip"), f"i3d kinetics subset: {subset}")
  typo = run(["i3d", "kinetics", "subset", "--version", "400", "--annotations",
              "set/kinetics-400_val.csv", "--classes", "playing crickett", "--output", "x.csv"],
             env=env, cwd=cwd, ok=False).stderr
  expect("did you mean 'playing cricket'" in typo, f"i3d kinetics subset typo: {typo}")
  step("i3d kinetics subset: the packaged label map")
  return env


def venv_data(python: Path, env: dict, cwd: Path) -> Path:
  out = run([python, "-c", "from i3d._util import env; print(env.data_dir())"], env=env, cwd=cwd)
  return Path(out.stdout.strip())


def check_beam(venv: Path, work: Path, env: dict) -> None:
  """`i3d evaluate` on workers that hold only the wheel equals the single-process run."""
  cwd = work / "user"
  common = ["--annotations", "set/kinetics-400_val.csv", "--video_dir", "set/videos",
            "--eval_type", "rgb", "--checkpoint_dir", "ck", "--offline", "--quiet"]
  run(["i3d", "evaluate", *common, "--output_dir", "single"], env=env, cwd=cwd)
  port = free_port()
  pool = subprocess.Popen([venv / "bin" / "python", "-m",
                           "apache_beam.runners.worker.worker_pool_main",
                           f"--service_port={port}"], env=env, cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    _wait_for_port(port)
    launcher = {**user_env(work, None), "PYTHONPATH": str(REPO)}  # the source tree, not the wheel
    started = time.monotonic()
    run([sys.executable, "-m", "i3d.cli", "evaluate", *common, "--output_dir", "cluster",
         "--runner", "PortableRunner", "--job_endpoint=embed", "--environment_type=EXTERNAL",
         f"--environment_config=localhost:{port}"], env=launcher, cwd=cwd)
    seconds = time.monotonic() - started
  finally:
    pool.terminate()
    pool.wait(timeout=60)
  single, cluster = (_predictions(cwd / name) for name in ("single", "cluster"))
  expect(single.keys() == cluster.keys() and len(single) == 3, "different clips scored")
  for clip_id, (classes, scores) in single.items():
    expect(cluster[clip_id][0] == classes, f"{clip_id}: classes differ")
    expect(all(abs(a - b) < 1e-5 for a, b in zip(scores, cluster[clip_id][1])),
           f"{clip_id}: scores differ")
  metrics = [json.loads((cwd / name / "metrics.json").read_text()) for name in ("single",
                                                                                 "cluster")]
  expect(metrics[0]["top1"] == metrics[1]["top1"] and
         metrics[0]["num_videos"] == metrics[1]["num_videos"], "metrics differ")
  step(f"Beam PortableRunner with an EXTERNAL worker pool from the wheel's environment: "
       f"same outputs as one process ({seconds:.0f} s)")


def _wait_for_port(port: int, timeout: float = 60) -> None:
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    with socket.socket() as s:
      if s.connect_ex(("localhost", port)) == 0:
        return
    time.sleep(0.2)
  raise SystemExit(f"wheel check: failed: the worker pool did not listen on port {port}")


def _predictions(folder: Path) -> dict:
  lines = (folder / "predictions.jsonl").read_text().splitlines()
  return {r["id"]: (r["classes"], r["scores"]) for r in map(json.loads, lines)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
  args = parser.parse_args()
  started = time.monotonic()
  work = Path(tempfile.mkdtemp(prefix="i3d-wheel-check-"))
  try:
    wheel = build_wheel(work)
    step(f"built {wheel.name}")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps",
                    "--ignore-installed", "--no-warn-script-location", wheel], check=True,
                   env=user_env(work, venv))
    env = check_commands(venv, work, wheel)
    check_beam(venv, work, env)
  finally:
    if args.keep:
      print(f"wheel check: kept {work}")
    else:
      shutil.rmtree(work, ignore_errors=True)
  step(f"passed in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
  main()
