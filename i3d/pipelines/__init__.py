"""Apache Beam pipelines for runs one machine cannot do in time: `evaluate` (videos -> views ->
RunInference -> predictions -> metrics), `preprocess` (annotations -> clips -> MediaSequence
shards) and `features` (videos -> inputs -> RunInference -> per-video feature files). They run
on Beam's local DirectRunner (one worker process per core) or on Dataflow, Flink and Spark with
Beam's own pipeline options (`options`); `inference` holds their RunInference model handlers.

Importing a submodule imports Apache Beam; only the commands that run a pipeline do. Without
Apache Beam installed (the `beam` extra), importing this package is a `UserError` saying so.
"""

from i3d._util import extras

extras.require("apache_beam", "--runner (Apache Beam pipelines)")
