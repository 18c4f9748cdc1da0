"""Apache Beam pipelines for runs one machine cannot do in time: `evaluate` (videos -> views ->
RunInference -> predictions -> metrics), `preprocess` (annotations -> clips -> MediaSequence
shards) and `features` (videos or shards -> per-video feature files, on the Beam executor).
They run on Beam's local DirectRunner (one worker process per core) or on Dataflow, Flink and
Spark with Beam's own pipeline options (`options`).

Importing a submodule imports Apache Beam; only the commands that run a pipeline do. Without
Apache Beam installed (the `beam` extra), importing this package is a `UserError` saying so.
"""

import logging

from i3d._util import extras

# Without apitools, importing Beam logs a warning through the root logger, which, when nothing
# configured logging, would also give the root logger a handler on stderr for good
# (`logging.basicConfig`): a handler that drops records stands in while Beam loads.
_ROOT, _HELD = logging.getLogger(), logging.NullHandler()
if not _ROOT.handlers:
  _ROOT.addHandler(_HELD)
try:
  extras.require("apache_beam", "--runner (Apache Beam pipelines)")
finally:
  _ROOT.removeHandler(_HELD)
