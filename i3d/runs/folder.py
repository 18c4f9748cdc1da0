"""A batch job's run folder: its lock, its settings, and each item's outcome keyed by id.

What is on disk (local, or on any filesystem `tf.io.gfile` reaches, through `_util.storage`):

- `.lock`: one writer at a time (local folders; a remote folder has one launcher by convention);
- the settings file (e.g. `run.json`): written by the first run; a rerun with other settings is
  refused with the differences listed;
- the results and failures logs (JSON lines, one record per item with its `id`), appended and
  fsynced by a single process (rewritten whole on remote filesystems);
- staged outcomes, one file per item (`STAGED/ID.json`, `{"kind", "record"}`), written
  atomically by the workers of a pipeline, which cannot append to a shared log. Opening the
  ledger folds any staged outcome the logs lack into them, so a run started by one process can
  be finished by a pipeline, and the other way round;
- the started log: each item is noted before its work, so an item that killed the process
  `MAX_STARTS` times (out of memory, a decoder crash) is recorded as failed instead of stopping
  every resumed run.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator

from i3d._util import storage, text
from i3d._util.files import environmental
from i3d._util.jsonl import Closing, open_lines
from i3d.errors import UserError

RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"
FAILURES_FILE = "failures.jsonl"
STARTED_FILE = "started.jsonl"
STAGED_DIR = "items"
# Times an item may be started without finishing (the process died) before it counts as failed.
MAX_STARTS = 2
RESULT, FAILURE = "result", "failure"
STOPPED = "stopped by the machine's failure"
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def failure_reason(error: BaseException) -> str:
  """The reason recorded for an item that failed: a UserError's own line, else the exception's
  type and message."""
  return str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"


def item_failure(error: Exception) -> str:
  """The reason to record for an item that failed with `error`, unless the failure is the
  machine's (`files.environmental`: a full disk, memory, permissions): then the `UserError` of
  `machine_failure` stops the run with nothing recorded against the item; a rerun does it."""
  if environmental(error):
    raise machine_failure(error) from error
  return failure_reason(error)


def machine_failure(error: BaseException) -> UserError:
  """The one line a run stopped by the machine's failure `error` ends with, also when `error`
  relays that line from a worker (TensorFlow's `py_function`, Beam)."""
  text = str(error)
  if STOPPED in text:
    return UserError(text[text.index(STOPPED):].splitlines()[0])
  return UserError(f"{STOPPED} ({failure_reason(error)}); nothing is recorded against the item "
                   f"in progress: fix the cause and run the same command again to resume")


def file_state(path: str | os.PathLike) -> str | None:
  """Size and modification time of a local file (None for a remote or absent one): an item that
  failed is tried again once its file changes."""
  if storage.is_remote(path) or not os.path.isfile(path):
    return None
  stat = os.stat(path)
  return f"{stat.st_size}:{stat.st_mtime_ns}"


def refuse_changes(where: object, what: str, earlier: dict, now: dict) -> None:
  """A `UserError` listing the differences (`key: old -> new`) when `now` differs from
  `earlier`, the settings of `what` (e.g. "a run", "features") already in `where`."""
  changed = text.differences(earlier, now)
  if changed:
    keys = sorted({k for k in earlier.keys() | now.keys() if earlier.get(k) != now.get(k)}, key=str)
    raise UserError(f"{where} holds {what} made with other settings (changed: "
                    f"{', '.join(map(str, keys))}; {'; '.join(changed)}); rerun with the earlier "
                    f"settings or use a new --output_dir")


class RunFolder:
  """The output folder of one batch job (`job` names it in messages: "evaluation")."""

  def __init__(self, path: str | os.PathLike, job: str):
    self.path = storage.join(path)
    self.job = job

  def file(self, *parts: str) -> str:
    return storage.join(self.path, *parts)

  @contextlib.contextmanager
  def locked(self) -> Iterator[RunFolder]:
    """Creates the folder and holds its lock; another writer is refused with a `UserError`."""
    try:
      storage.makedirs(self.path)
    except OSError as e:
      raise UserError(f"cannot write to {self.path} ({e.strerror or e}); choose a writable "
                      f"--output_dir") from None
    with storage.locked(self.path, f"another {self.job} is writing to {self.path}"):
      yield self

  def check_settings(self, record: dict, name: str = RUN_FILE, what: str = "a run") -> None:
    """Writes the settings file `name` on a first run; a rerun with other settings is refused
    with the differences listed, as is a damaged file."""
    path = self.file(name)
    if not storage.exists(path):
      storage.write_bytes(path, json.dumps(record, indent=1, allow_nan=False).encode())
      return
    try:
      earlier = json.loads(storage.read_bytes(path))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
      raise UserError(f"{path} is damaged ({e}); use a new --output_dir, or delete the run's "
                      f"files to start it again") from None
    if not isinstance(earlier, dict):
      raise UserError(f"{path} is damaged (not a JSON object); use a new --output_dir")
    refuse_changes(self.path, what, earlier, record)


def _staged_name(item_id: str) -> str:
  """The file name of an item's staged outcome: its id, hex-encoded unless a plain file name."""
  return f"{item_id if _SAFE_ID.match(item_id) else 'x' + item_id.encode().hex()}.json"


def staged_path(folder: str, staged: str, item_id: str) -> str:
  """Where an item's staged outcome goes: a name fixed by its id."""
  return storage.join(folder, staged, _staged_name(item_id))


def stage(folder: str, staged: str, outcome: dict) -> None:
  """Writes an outcome {"kind": RESULT or FAILURE, "record": {"id", ...}} atomically under its
  id (a retried bundle rewrites the same file)."""
  storage.makedirs(storage.join(folder, staged))
  storage.write_bytes(staged_path(folder, staged, outcome["record"]["id"]),
                      json.dumps(outcome).encode())


class Ledger(Closing):
  """The outcomes of a run's items, keyed by id: the results, failures and started logs of
  `folder`, with the staged outcomes (`staged`) folded in; `item` names an item in messages
  ("video"), `retried` says when a failed one is tried again. Close it (or use it as a context
  manager) when the run ends."""

  def __init__(self, folder: RunFolder, results: str = RESULTS_FILE,
               failures: str = FAILURES_FILE, started: str = STARTED_FILE,
               staged: str = STAGED_DIR, item: str = "item",
               retried: str = "when the file changes, or with --retry_failed"):
    self.folder, self.staged, self.item, self.retried = folder, staged, item, retried
    self.results = open_lines(folder.file(results))
    self.failures = open_lines(folder.file(failures))
    self.started = open_lines(folder.file(started))
    self._lock = threading.Lock()
    self._begun: dict[str, dict] = {}  # this process's starts of items not yet done
    self._failed: set[str] = set()  # items this process started that failed on their own
    self._stopped = False  # the run stops for the machine's failure: no item starts now
    for log in (self.failures, self.started):
      if not all(isinstance(r.get("id"), str) for r in log.records):
        raise UserError(f"{log.path} is damaged (a line has no item id); delete it to try the "
                        f"failed items again")
    self._fold()

  def _fold(self) -> None:
    """Appends to the logs the staged outcomes of items they have no outcome of (only those
    files are read: resuming a finished run reads none)."""
    known = {r.get("id") for log in (self.results, self.failures) for r in log.records}
    folder = self.folder.file(self.staged)
    logged = {_staged_name(i) for i in known if isinstance(i, str)}
    for name in storage.list_names(folder, ".json"):
      if name in logged:
        continue
      path = storage.join(folder, name)
      try:
        outcome = json.loads(storage.read_bytes(path))
        record = outcome["record"]
        item_id = record["id"]
      except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} is damaged ({e}); delete it to do its item again") from None
      if item_id not in known:
        (self.failures if outcome.get("kind") == FAILURE else self.results).append(record)
        known.add(item_id)

  def standing_failures(self, found: dict[str, str | None], ids: set[str], retry_all: bool,
                        crashed: Callable[[str, str], dict]) -> dict[str, dict]:
    """The failures that stand, by id, among the items `ids`; `found` holds the state
    (`file_state`) of each item whose file is there.

    A failure is dropped, so its item is tried again, when its file changed or went, or with
    `retry_all`. An item that killed the process (`crashes`) is recorded as failed, with the
    record `crashed(id, reason)`.
    """
    def current(record: dict) -> bool:
      return record["id"] in found and record.get("file") == found[record["id"]]

    stale = {r["id"] for r in self.failures.records if retry_all or not current(r)}
    if stale:
      self.keep(lambda r: r["id"] not in stale)
    failures = {r["id"]: r for r in self.failures.records if r["id"] in ids}
    done = {r.get("id") for r in self.results.records} | set(failures)
    for item_id, reason in self.crashes(found, done).items():
      failures[item_id] = self.fail(crashed(item_id, reason))
    return failures

  def crashes(self, found: dict[str, str | None], done: set) -> dict[str, str]:
    """The reason to record, by id, for each item of `found` (id: its file's state) that was
    started `MAX_STARTS` times with that file and never finished (not in `done`): it killed the
    process each time (out of memory, a decoder crash)."""
    counts = collections.Counter(r["id"] for r in self.started.records if r["id"] in found
                                 and r.get("file") == found[r["id"]] and r["id"] not in done)
    return {item_id: f"the run died {n} times while this {self.item} was being processed (out "
                     f"of memory or a decoder crash?); it is tried again {self.retried}"
            for item_id, n in sorted(counts.items()) if n >= MAX_STARTS}

  def keep(self, wanted: Callable[[dict], bool]) -> None:
    """Drops the failures and starts of the items for which `wanted(failure)` is false, with
    their staged outcomes."""
    dropped = {r["id"] for r in self.failures.records if not wanted(r)}
    for log in (self.failures, self.started):
      log.keep(lambda r: r["id"] not in dropped)
    for item_id in dropped:
      storage.remove(staged_path(self.folder.path, self.staged, item_id))

  def start(self, item_id: str, state: str | None) -> None:
    """Notes, durably, that work on an item begins (safe from several threads); a
    `RuntimeError` once the run stops for the machine's failure (`forget_begun`)."""
    record = {"id": item_id, "file": state}
    with self._lock:
      if self._stopped:
        raise RuntimeError("the run is stopping for the machine's failure")
      self.started.append(record)
      self.started.sync()
      self._begun[item_id] = record

  def succeed(self, record: dict) -> dict:
    """Records an item's result."""
    self.results.append(record)
    self._begun.pop(record["id"], None)
    return record

  def fail(self, record: dict) -> dict:
    """Records an item's failure ({"id", ..., "reason"}); when this process started the item, it
    failed on its own, so its starts are dropped when the ledger closes."""
    self.failures.append(record)
    if self._begun.pop(record["id"], None) is not None:
      self._failed.add(record["id"])
    return record

  def forget_begun(self) -> None:
    """Drops this process's starts of the items it has not finished: it stops for the machine's
    failure, not theirs, so they are not counted as having killed it; no item starts after
    this (workers still loading the next items when the run stops)."""
    with self._lock:
      self._stopped = True
      begun = {id(r) for r in self._begun.values()}
      self.started.keep(lambda r: id(r) not in begun)
      self._begun.clear()

  def close(self) -> None:
    with self._lock:
      if self._failed:
        self.started.keep(lambda r: r["id"] not in self._failed)
        self._failed.clear()
    for log in (self.results, self.failures, self.started):
      log.close()
