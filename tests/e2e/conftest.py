"""The toolkit's commands end to end as users run them, most in subprocesses: select with
`-m e2e`."""

import pytest


def pytest_collection_modifyitems(items):
  for item in items:
    if "/e2e/" in str(item.fspath):
      item.add_marker(pytest.mark.e2e)
