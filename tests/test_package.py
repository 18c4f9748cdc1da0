"""The package's shape: layers import only from the layers below them, and the light entry points
(`import i3d`, the Kinetics tools, the metrics, `i3d kinetics ... --help`) never load TensorFlow."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.clips import REPO

PACKAGE = REPO / "i3d"
# Lowest first; a module may import its own layer and any layer before it.
LAYERS = ("errors", "_util", "runs", "model", "inputs", "classify", "embed", "train", "kinetics",
          "datasets", "pipelines", "cli")
# Modules outside the layers: the lazy public front, and test support that builds fixtures.
FREE = {"__init__", "testing"}


def _layer(module: str) -> str:
  """`i3d.inputs.flow` -> "inputs"; `i3d.errors` -> "errors"."""
  return module.split(".")[1]


def _imports(path: Path) -> set[str]:
  """The i3d modules a source file imports, at any depth (lazy imports count too)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("i3d"):
      found.add(node.module if node.module != "i3d" else f"i3d.{node.names[0].name}")
    elif isinstance(node, ast.Import):
      found.update(a.name for a in node.names if a.name.startswith("i3d."))
  return found


def test_every_module_is_in_a_layer():
  for path in PACKAGE.rglob("*.py"):
    top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    assert top in LAYERS or top in FREE, f"{path} is in no layer; add it to LAYERS"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_layers_import_only_from_below(path):
  top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
  if top in FREE:
    return
  for module in _imports(path):
    if module.count(".") == 0:
      continue
    assert LAYERS.index(_layer(module)) <= LAYERS.index(top), (
        f"{path.relative_to(REPO)} (layer {top}) imports {module} from a layer above it")


@pytest.mark.parametrize("statement", [
    "import i3d", "import i3d.kinetics", "import i3d.kinetics.metrics",
    "import i3d.classify.ranking", "import i3d.model.registry, i3d.model.labels",
    "import i3d.inputs.settings, i3d.inputs.decode", "import i3d; i3d.EVAL_TYPES; i3d.CHECKPOINTS",
])
def test_light_imports_do_not_load_tensorflow(statement):
  code = f"{statement}; import sys; assert 'tensorflow' not in sys.modules, 'tensorflow loaded'"
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr


def test_kinetics_help_starts_without_tensorflow():
  code = ("import sys; sys.argv = ['i3d', 'kinetics', 'subset', '--help']\n"
          "from i3d.cli import main\n"
          "try:\n  main.run()\nexcept SystemExit:\n  pass\n"
          "assert 'tensorflow' not in sys.modules, 'tensorflow loaded'")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  assert "--max_samples" in result.stdout


def test_public_api_resolves_every_name():
  code = ("import i3d; print([n for n in i3d.__all__ if getattr(i3d, n, None) is None])")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
  assert result.stdout.strip() == "[]", result.stderr


def _anchors(page: Path) -> set[str]:
  """The heading anchors of a Markdown page, as MkDocs names them."""
  import re
  import unicodedata
  names = set()
  for heading in re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.M):
    value = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    names.add(re.sub(r"[-\s]+", "-", value))
  return names


def test_readme_links_reach_files_and_headings():
  """The front door's links into the site (which `mkdocs build --strict` does not see)."""
  import re
  links = re.findall(r"\]\(([^)#:]+)(?:#([^)]+))?\)", (REPO / "README.md").read_text())
  assert len(links) > 20
  for target, anchor in links:
    assert (REPO / target).is_file(), f"README.md links to missing {target}"
    assert not anchor or anchor in _anchors(REPO / target), f"README.md: no #{anchor} in {target}"


def test_the_package_holds_its_data_and_reads_nothing_from_the_repository_root():
  from i3d._util import env
  assert env.data_dir() == PACKAGE / "data"
  assert {"label_map.txt", "label_map_600.txt", "label_map_700.txt"} <= {
      p.name for p in env.data_dir().iterdir()}
  for path in PACKAGE.rglob("*.py"):
    source = path.read_text(encoding="utf-8")
    assert ".parent.parent.parent" not in source and "REPO_ROOT" not in source, path
