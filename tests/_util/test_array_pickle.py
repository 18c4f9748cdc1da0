"""The arrays-only unpickler: NumPy's own pickles of plain arrays load equal to `pickle.load`;
every other global is refused before it is called, and malformed arrays are refused."""

import pickle
import subprocess

import numpy as np
import pytest

from i3d._util.array_pickle import load_arrays
from i3d.errors import UserError


def _tree():
  rng = np.random.default_rng(0)
  return {"params": {"a/b": {"kernel": rng.normal(size=(3, 3, 3, 2, 4)).astype(np.float32)},
                     "big_endian": np.arange(6, dtype=">i4").reshape(2, 3),
                     "fortran": np.asfortranarray(rng.normal(size=(3, 5))),
                     "empty": np.zeros((0, 7), np.uint8), "flags": np.array([True, False])},
          "meta": ["name", 3, 2.5, None, (np.float16(1.5) * np.ones(2, np.float16),)]}


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_pickles_load_equal_to_pickle(protocol):
  tree = _tree()
  data = pickle.dumps(tree, protocol=protocol)
  ours, theirs = load_arrays(data, "t.pkl"), pickle.loads(data)
  a, b = ours["params"], theirs["params"]
  for key in ("big_endian", "fortran", "empty", "flags"):
    assert a[key].dtype.str[1:] == b[key].dtype.str[1:] and np.array_equal(a[key], b[key])
  assert np.array_equal(a["a/b"]["kernel"], b["a/b"]["kernel"])
  assert a["fortran"].flags.f_contiguous
  assert ours["meta"][:4] == ["name", 3, 2.5, None]
  assert np.array_equal(ours["meta"][4][0], theirs["meta"][4][0])


class _Touch:
  """Pickles as a call of `subprocess.run` that would create a marker file."""

  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return subprocess.run, (["touch", str(self.path)],)


def test_other_globals_are_refused_before_they_are_called(tmp_path):
  marker = tmp_path / "pwned"
  data = pickle.dumps({"params": {"w": np.ones(3)}, "x": _Touch(marker)})
  with pytest.raises(UserError, match=r"evil.ckpt: refused to unpickle the global "
                                      r"subprocess.run"):
    load_arrays(data, "evil.ckpt")
  assert not marker.exists()


@pytest.mark.parametrize("value, problem", [
    (np.array(["text"]), "dtype"),                      # strings
    (np.array([{"a": 1}], dtype=object), "dtype"),      # objects (pickled callables inside)
    (np.zeros(2, [("a", "f4"), ("b", "i4")]), "dtype"),  # structured
    (np.datetime64("2020-01-01") + np.arange(2), "dtype"),
    (3 + 4j, "global"),                                  # complex numbers are a global call
    ({1: np.ones(2)}, "non-string keys"),
])
def test_values_that_are_not_plain_arrays_are_refused(value, problem):
  with pytest.raises(UserError, match=problem):
    load_arrays(pickle.dumps({"v": value}, protocol=4), "f.pkl")


def test_a_buffer_shorter_than_its_shape_is_refused():
  data = pickle.dumps({"w": np.zeros((4, 4), np.float32)}, protocol=4)
  raw = np.zeros((4, 4), np.float32).tobytes()
  # The same pickle declaring a shape whose data would be 100x larger than the bytes it holds.
  tampered = data.replace(b"K\x04K\x04\x86", b"K\x04Kd\x86")
  assert tampered != data and raw in tampered
  with pytest.raises(UserError, match="with 64 bytes of data"):
    load_arrays(tampered, "f.pkl")


@pytest.mark.parametrize("data", [b"", b"\x80\x04garbage", pickle.dumps([np.ones(2)]),
                                  pickle.dumps({"w": np.ones(8)})[:-20]])
def test_damaged_or_foreign_pickles_are_one_line_errors(data):
  with pytest.raises(UserError) as error:
    load_arrays(data, "w.ckpt")
  assert str(error.value).startswith("w.ckpt: ") and "\n" not in str(error.value)
