"""Wording shared by messages: counts with the right noun form, lists cut short, changed
settings."""


def count(n: int, noun: str, plural: str | None = None) -> str:
  """`1 malformed row`, `2 malformed rows` (`plural` for irregular nouns)."""
  return f"{n} {noun if n == 1 else plural or noun + 's'}"


def some(items: list[str], shown: int, sep: str = ", ") -> str:
  """The first `shown` of `items` joined by `sep`, with ` ...` when there are more."""
  return sep.join(items[:shown]) + (" ..." if len(items) > shown else "")


def differences(earlier: object, now: object, name: str = "") -> list[str]:
  """`key: old -> new` for each setting that differs between two records (nested dictionaries
  named `outer.inner`), sorted by name."""
  if isinstance(earlier, dict) and isinstance(now, dict):
    return [line for key in sorted(set(earlier) | set(now), key=str)
            for line in differences(earlier.get(key), now.get(key),
                                    f"{name}.{key}" if name else str(key))]
  return [] if earlier == now else [f"{name or 'settings'}: {earlier!r} -> {now!r}"]
