"""RunInference's model handlers: a model described by a small picklable spec (shipped to the
workers instead of the weights) and loaded from it once per worker."""

from __future__ import annotations

from typing import Protocol, TypeVar

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from i3d.runs.executors import limit_threads

ExampleT = TypeVar("ExampleT")
ModelT = TypeVar("ModelT")
ModelT_co = TypeVar("ModelT_co", covariant=True)


class ModelSpec(Protocol[ModelT_co]):
  """What a worker loads: e.g. `i3d.pipelines.evaluate.ClassifierSpec`."""

  def load(self) -> ModelT_co:
    """The model, weights restored."""


class SpecModelHandler(ModelHandler[ExampleT, PredictionResult, ModelT]):
  """Loads `spec`'s model once per worker, after keeping the worker to `threads` threads
  (`limit_threads`); RunInference hands `run_inference` batches of up to `max_batch` examples.
  Subclasses define `run_inference`."""

  def __init__(self, spec: ModelSpec[ModelT], max_batch: int, threads: int | None):
    super().__init__()
    self._spec, self._max_batch, self._threads = spec, max_batch, threads

  def load_model(self) -> ModelT:
    limit_threads(self._threads)
    return self._spec.load()

  def batch_elements_kwargs(self) -> dict:
    return {"min_batch_size": 1, "max_batch_size": self._max_batch}
