"""Pickles of NumPy arrays from untrusted bytes: nested dicts, lists and tuples of plain numeric
arrays, and nothing else.

`pickle.load` runs whatever callable a pickle names. This loader resolves only the globals NumPy's
own array pickles use (`ndarray`, `dtype` and `_reconstruct`, or `_frombuffer` for protocol 5;
`_codecs.encode` for bytes in protocols 0-2) to stand-ins written here, which check every value
(dtype code, byte order, shape, buffer length) before an array is made from the bytes; any other
global is refused before anything is called.
"""

import io
import math
import pickle
from typing import Any

import numpy as np

from i3d.errors import UserError

# Plain numeric dtypes only: no objects, strings, structured or datetime types.
DTYPE_CODES = frozenset({"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8"})
BYTE_ORDERS = frozenset({"<", ">", "|", "="})


class _Refused(Exception):
  """The pickle asked for something this loader does not build."""


_NDARRAY = object()  # stands for `numpy.ndarray` as the first argument of `_reconstruct`


class _Dtype:
  """`numpy.dtype(code, align, copy)` followed by its `__setstate__` (the byte order)."""

  def __init__(self, code: Any, align: Any = False, copy: Any = True):
    if not isinstance(code, str) or code not in DTYPE_CODES:
      raise _Refused(f"dtype {code!r} (only plain numeric dtypes are accepted)")
    self.dtype = np.dtype(code)

  def __setstate__(self, state: Any) -> None:
    if not isinstance(state, tuple) or len(state) < 2 or state[1] not in BYTE_ORDERS:
      raise _Refused(f"dtype state {state!r:.80}")
    if len(state) > 3 and (state[2] is not None or state[3] is not None):
      raise _Refused("a structured dtype")
    if state[1] in "<>":
      self.dtype = self.dtype.newbyteorder(state[1])


class _Array:
  """`_reconstruct(ndarray, (0,), b'b')` followed by `__setstate__((version, shape, dtype,
  fortran, bytes))`: the array is made from the bytes once they are checked."""

  def __init__(self) -> None:
    self.array: np.ndarray | None = None

  def __setstate__(self, state: Any) -> None:
    if not isinstance(state, tuple) or len(state) != 5:
      raise _Refused(f"array state of {type(state).__name__}")
    _, shape, dtype, fortran, data = state
    self.array = _make_array(data, dtype, shape, "F" if fortran else "C")


def _make_array(data: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
  """An owned array from checked bytes, dtype stand-in, shape and order."""
  if not isinstance(dtype, _Dtype):
    raise _Refused(f"an array of dtype {type(dtype).__name__}")
  if (not isinstance(shape, tuple) or len(shape) > 32
          or not all(type(d) is int and d >= 0 for d in shape)):
    raise _Refused(f"array shape {shape!r:.80}")
  if not isinstance(data, (bytes, bytearray)) or order not in ("C", "F"):
    raise _Refused("an array whose data is not bytes")
  if len(data) != math.prod(shape) * dtype.dtype.itemsize:
    raise _Refused(f"an array of shape {shape} {dtype.dtype} with {len(data)} bytes of data")
  return np.array(np.frombuffer(data, dtype.dtype).reshape(shape, order=order), order=order)


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _Array:
  if cls is not _NDARRAY:
    raise _Refused(f"_reconstruct of {type(cls).__name__}")
  return _Array()


def _frombuffer(data: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
  return _make_array(bytes(data) if isinstance(data, memoryview) else data, dtype, shape, order)


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
  """`_codecs.encode(text, "latin1")`: how protocols 0-2 store bytes."""
  if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
    raise _Refused(f"_codecs.encode of {type(text).__name__} as {encoding!r}")
  return text.encode("latin1")


def _no_bytes(*args: Any) -> bytes:
  """`bytes()`: how protocols 0-2 store empty bytes."""
  if args:
    raise _Refused("bytes() with arguments")
  return b""


_GLOBALS = {
    ("_codecs", "encode"): _latin1_bytes,
    ("builtins", "bytes"): _no_bytes,
    ("__builtin__", "bytes"): _no_bytes,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}


class _ArrayUnpickler(pickle.Unpickler):
  def find_class(self, module: str, name: str) -> Any:
    try:
      return _GLOBALS[(module, name)]
    except KeyError:
      raise _Refused(f"the global {module}.{name}") from None


def load_arrays(data: bytes, name: str) -> dict:
  """The nested dict of arrays pickled in `data` (the bytes of file `name`).

  Leaves may be arrays of plain numeric dtypes, strings, numbers, booleans and None; containers
  dicts with string keys, lists and tuples.

  Raises:
    UserError: one line naming `name` when the pickle holds anything else or is damaged.
  """
  try:
    tree = _ArrayUnpickler(io.BytesIO(data)).load()
    if not isinstance(tree, dict):
      raise _Refused(f"a top level {type(tree).__name__} (expected a dict of arrays)")
    return _resolve(tree)
  except _Refused as e:
    raise UserError(f"{name}: refused to unpickle {e}; this file is not the expected weights "
                    f"(delete it and fetch it again)") from None
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
          IndexError, KeyError, MemoryError, RecursionError) as e:
    raise UserError(f"{name}: damaged pickle ({type(e).__name__}: {str(e)[:80]}); delete it and "
                    f"fetch it again") from None


def _resolve(value: Any) -> Any:
  """`value` with every array stand-in replaced by its array; anything else refused."""
  if isinstance(value, _Array):
    if value.array is None:
      raise _Refused("an array without data")
    return value.array
  if isinstance(value, dict):
    if not all(isinstance(k, str) for k in value):
      raise _Refused("a dict with non-string keys")
    return {k: _resolve(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return type(value)(_resolve(v) for v in value)
  if isinstance(value, np.ndarray) or value is None or type(value) in (str, int, float, bool):
    return value
  raise _Refused(f"a value of type {type(value).__name__}")
