"""Apache Beam pipelines for runs one machine cannot do in time: `evaluate` (videos -> views ->
RunInference -> predictions -> metrics) and `preprocess` (annotations -> clips -> MediaSequence
shards). They run on Beam's local DirectRunner (one worker process per core) or on Dataflow,
Flink and Spark with Beam's own pipeline options (`options`).

Importing a submodule imports Apache Beam; only the commands that run a pipeline do.
"""
