"""Live processes read from /proc, for tests that check what a killed run leaves behind."""

from pathlib import Path

FIELDS = {"parent": 1, "group": 2, "session": 3}  # in /proc/PID/stat after the state field


def live(field: str, value: int) -> list[int]:
  """Live (not zombie) processes whose `field` (parent, group or session) is `value`."""
  found = []
  for stat in Path("/proc").glob("[0-9]*/stat"):
    try:
      fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
      continue
    if int(fields[FIELDS[field]]) == value and fields[0] != "Z":
      found.append(int(stat.parent.name))
  return found
