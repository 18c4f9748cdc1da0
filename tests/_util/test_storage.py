"""Local and remote files alike: `file://` URLs take the tf.io.gfile path that gs:// ones take."""

import pytest

from i3d._util import storage
from i3d.errors import UserError


def test_inside_keeps_names_in_their_folder_local_and_remote(tmp_path):
  for root in (str(tmp_path), f"file://{tmp_path}"):
    assert storage.inside(root, "a", "b.pb") == storage.join(root, "a", "b.pb")
    for bad in ("..", "../x", "a/../../x", "/etc/passwd", "."):
      with pytest.raises(UserError, match="lies outside"):
        storage.inside(root, bad)


def test_atomic_path_on_gfile_renames_on_success_and_keeps_the_old_file_on_error(tmp_path):
  url = f"file://{tmp_path}/shard"
  (tmp_path / "shard").write_bytes(b"old")
  with pytest.raises(RuntimeError), storage.atomic_path(url) as temporary:
    storage.write_bytes(temporary, b"half")
    raise RuntimeError
  assert (tmp_path / "shard").read_bytes() == b"old"
  assert [p.name for p in tmp_path.iterdir()] == ["shard"]
  with storage.atomic_path(url) as temporary:
    assert storage.is_remote(temporary)
    storage.write_bytes(temporary, b"new")
    assert (tmp_path / "shard").read_bytes() == b"old"
  assert storage.read_bytes(url) == b"new"
  assert [p.name for p in tmp_path.iterdir()] == ["shard"]


def test_remove_temporaries_and_remove(tmp_path):
  for name in (".a.pb.tmp123", ".b.tmpdeadbeef", "c.pb", ".lock"):
    (tmp_path / name).write_bytes(b"x")
  storage.remove_temporaries(f"file://{tmp_path}")
  assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "c.pb"]
  storage.remove(f"file://{tmp_path}/c.pb")
  storage.remove(f"file://{tmp_path}/c.pb")  # gone already: nothing to do
  storage.remove(str(tmp_path / ".lock"))
  assert not list(tmp_path.iterdir())


def test_locked_refuses_a_second_writer_on_a_local_folder(tmp_path):
  with storage.locked(str(tmp_path), "busy"):
    with pytest.raises(UserError, match="busy"), storage.locked(str(tmp_path), "busy"):
      pass
    with storage.locked(f"file://{tmp_path}", "busy"):  # remote folders are not locked
      pass


def test_locked_refuses_a_second_writer_on_a_local_folder_only(tmp_path):
  with storage.locked(str(tmp_path), "busy here"):
    with pytest.raises(UserError, match="busy here"):
      with storage.locked(str(tmp_path), "busy here"):
        pass
    with storage.locked(f"file://{tmp_path}", "busy"):  # remote folders are not locked
      pass
  with storage.locked(str(tmp_path), "busy here"):  # released
    pass


def test_a_folder_lock_leaves_no_lock_file_and_refuses_a_second_writer(tmp_path):
  with storage.locked(str(tmp_path), "busy"):
    assert (tmp_path / ".lock").exists()
    with pytest.raises(UserError, match="^busy$"):
      with storage.locked(str(tmp_path), "busy"):
        pass
  assert list(tmp_path.iterdir()) == []
  with storage.locked(str(tmp_path), "busy"):  # free again
    pass
  assert list(tmp_path.iterdir()) == []
