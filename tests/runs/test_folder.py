"""Run folders: settings refused with their differences, the lock, outcomes staged by workers
folded into the logs, failures that stand or go, and items that killed the process."""

import json

import pytest

from i3d._util import storage
from i3d.errors import UserError
from i3d.runs import folder as runs


def test_settings_are_written_once_and_a_rerun_with_others_lists_the_differences(tmp_path):
  folder = runs.RunFolder(tmp_path / "run", "evaluation")
  with folder.locked():
    folder.check_settings({"top_k": 5, "model": "rgb"})
    folder.check_settings({"top_k": 5, "model": "rgb"})  # the same settings resume
    with pytest.raises(UserError, match=r"holds a run made with other settings \(changed: "
                                        r"model, top_k; model: 'rgb' -> 'flow'; top_k: 5 -> 10\); "
                                        r"rerun"):
      folder.check_settings({"top_k": 10, "model": "flow"})
  assert json.loads((tmp_path / "run" / runs.RUN_FILE).read_text()) == {"top_k": 5,
                                                                         "model": "rgb"}
  (tmp_path / "run" / runs.RUN_FILE).write_text("[1]")
  with pytest.raises(UserError, match="run.json is damaged"):
    folder.check_settings({"top_k": 5})


def test_a_second_writer_is_refused_and_an_unwritable_folder_is_one_line(tmp_path):
  folder = runs.RunFolder(tmp_path / "run", "feature extraction")
  with folder.locked():
    with pytest.raises(UserError, match="another feature extraction is writing to"):
      with runs.RunFolder(tmp_path / "run", "feature extraction").locked():
        pass
  (tmp_path / "file").write_text("")
  with pytest.raises(UserError, match="cannot write to .*file/run"):
    with runs.RunFolder(tmp_path / "file" / "run", "evaluation").locked():
      pass
  with pytest.raises(OSError):  # errors of the work itself are not the folder's
    with folder.locked():
      raise OSError("the job's own error")


@pytest.mark.parametrize("remote", [False, True])
def test_staged_outcomes_are_folded_into_the_logs_once(tmp_path, remote):
  path = f"file://{tmp_path}" if remote else str(tmp_path)
  folder = runs.RunFolder(path, "evaluation")
  runs.stage(path, runs.STAGED_DIR, {"kind": runs.RESULT, "record": {"id": "a", "top": 1}})
  runs.stage(path, runs.STAGED_DIR, {"kind": "prediction", "record": {"id": "b/c", "top": 2}})
  runs.stage(path, runs.STAGED_DIR, {"kind": runs.FAILURE, "record": {"id": "d", "reason": "x"}})
  assert sorted(storage.list_names(storage.join(path, runs.STAGED_DIR))) == [
      "a.json", "d.json", "x622f63.json"]  # an id that is no plain file name is hex-encoded
  for _ in range(2):
    with runs.Ledger(folder) as ledger:
      assert sorted(r["id"] for r in ledger.results.records) == ["a", "b/c"]
      assert [r["id"] for r in ledger.failures.records] == ["d"]
  lines = (tmp_path / runs.RESULTS_FILE).read_text().splitlines()
  assert sorted(json.loads(line)["id"] for line in lines) == ["a", "b/c"]


def test_failures_stand_until_their_file_changes_and_crashes_become_failures(tmp_path):
  folder = runs.RunFolder(tmp_path, "evaluation")
  video = tmp_path / "v.mp4"
  video.write_bytes(b"1")
  state = runs.file_state(video)
  with runs.Ledger(folder, item="video") as ledger:
    ledger.fail({"id": "bad", "file": state, "reason": "corrupt"})
    runs.stage(str(tmp_path), runs.STAGED_DIR, {"kind": runs.FAILURE,
                                                "record": {"id": "bad", "file": state}})
    for _ in range(runs.MAX_STARTS):
      ledger.start("poison", state)
    ledger.start("once", state)

  def crashed(item_id, reason):
    return {"id": item_id, "file": state, "reason": reason}

  found = {"bad": state, "poison": state, "once": state}
  with runs.Ledger(folder, item="video") as ledger:
    failures = ledger.standing_failures(found, set(found), False, crashed)
  assert sorted(failures) == ["bad", "poison"]
  assert "the run died 2 times while this video was being processed" in \
      failures["poison"]["reason"]
  with runs.Ledger(folder) as ledger:  # the crash is now a recorded failure
    assert sorted(r["id"] for r in ledger.failures.records) == ["bad", "poison"]
    video.write_bytes(b"22")  # repaired: its failures go, with the staged one
    changed = dict.fromkeys(found, runs.file_state(video))
    assert ledger.standing_failures(changed, set(found), False, crashed) == {}
  assert not (tmp_path / runs.STAGED_DIR / "bad.json").exists()
  with runs.Ledger(folder) as ledger:
    assert ledger.failures.records == []
    assert [r["id"] for r in ledger.started.records] == ["once"]  # its state tells it is old


def test_a_run_stopping_for_the_machine_forgets_its_starts_and_starts_nothing_more(tmp_path):
  with runs.Ledger(runs.RunFolder(tmp_path, "evaluation")) as ledger:
    ledger.start("done", None)
    ledger.succeed({"id": "done"})
    ledger.start("loading", None)
    ledger.forget_begun()
    with pytest.raises(RuntimeError, match="stopping"):  # a worker still loading the next one
      ledger.start("next", None)
  with runs.Ledger(runs.RunFolder(tmp_path, "evaluation")) as ledger:
    assert [r["id"] for r in ledger.started.records] == ["done"]


def test_damaged_logs_are_one_line_errors(tmp_path):
  (tmp_path / runs.STARTED_FILE).write_text('{"file": "1:2"}\n')
  with pytest.raises(UserError, match="started.jsonl is damaged"):
    runs.Ledger(runs.RunFolder(tmp_path, "evaluation"))
  (tmp_path / runs.STARTED_FILE).unlink()
  (tmp_path / runs.STAGED_DIR).mkdir()
  (tmp_path / runs.STAGED_DIR / "a.json").write_text("{}")
  with pytest.raises(UserError, match="a.json is damaged"):
    runs.Ledger(runs.RunFolder(tmp_path, "evaluation"))


def test_failure_reasons():
  assert runs.failure_reason(UserError("x.mp4: not a video")) == "x.mp4: not a video"
  assert runs.failure_reason(KeyError("k")) == "KeyError: 'k'"
