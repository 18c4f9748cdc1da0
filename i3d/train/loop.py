"""The fine-tuning loop: a `tf.function` step under a `tf.distribute` strategy, SGD with momentum
(`snt.optimizers.Momentum`), checkpoints a kill cannot lose, evaluation, summaries.

Run folder (`TrainConfig.output_dir`):

- `run.json`: the settings; a rerun with other settings is refused with the differences;
- `checkpoints/step-N/`: model, optimizer, step and state every `checkpoint_every` steps and
  at the end (the last `keep`), `best/`: the one with the best evaluation top-1 (`saving`:
  each complete or absent whenever a kill comes);
- `labels.txt`, and per stream `STREAM/model.ckpt.*` + `STREAM/labels.txt`: the model of the
  last checkpoint in the released layout, loadable wherever a checkpoint is (each stream
  folder replaced whole); `state.json`: its step, time, top-1s;
- `tensorboard/`: loss, learning rate, top-1; `summary.md` at the end.

Under `MultiWorkerMirroredStrategy` every worker runs the same command; worker 0 writes
`output_dir`, worker i its own copy in `output_dir/worker-i` (checkpoints included, so each
resumes from its own).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path

import sonnet as snt
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from i3d._util import progress
from i3d._util.files import atomic_write, write_json
from i3d.errors import UserError
from i3d.inputs import records
from i3d.model.fast import precision_warning
from i3d.runs.folder import RunFolder
from i3d.train import data, model, saving

SCHEDULES = ("cosine", "step")
SUMMARY_FILE = "summary.md"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything a training run depends on (`run.json` holds it, less the `LOCAL` fields)."""
  records: str
  output_dir: str
  eval_records: str | None = None
  eval_type: str = "rgb"
  init: str = "rgb_imagenet"
  flow_init: str = "flow_imagenet"
  freeze_until: str = "none"
  batchnorm: str = "frozen"
  dropout_keep_prob: float = 0.5
  learning_rate: float = 0.01
  momentum: float = 0.9
  weight_decay: float = 1e-7
  schedule: str = "cosine"
  warmup_steps: int = 0
  clip_frames: int = 64
  crop_size: int = 224
  flip: bool = False
  batch: int = 8
  steps: int | None = None
  epochs: float | None = None
  seed: int = 0
  checkpoint_every: int = 100
  keep: int = 3
  eval_every: int = 0
  eval_batch: int = 4
  precision: str = model.AUTO
  checkpoint_dir: str | None = None
  download: bool = True

  LOCAL = ("output_dir", "checkpoint_dir", "download")

  @property
  def streams(self) -> tuple[str, ...]:
    if self.eval_type not in ("rgb", "flow", "joint"):
      raise UserError(f"--eval_type {self.eval_type!r}: expected rgb, flow or joint")
    return ("rgb", "flow") if self.eval_type == "joint" else (self.eval_type,)

  def record(self) -> dict:
    return {k: v for k, v in dataclasses.asdict(self).items() if k not in self.LOCAL}

  def inits(self) -> dict[str, str]:
    """The starting checkpoint of each tower: `init` for the first, `flow_init` for joint's
    flow tower (a training run folder given as `init` serves both)."""
    if self.eval_type == "joint" and model.checkpoints.run_streams(self.init).keys() == {
        "rgb", "flow"}:
      return {"rgb": self.init, "flow": self.init}
    first = self.streams[0]
    return {first: self.init, **({"flow": self.flow_init} if self.eval_type == "joint" else {})}

  def check(self) -> None:
    numbers = {"--batch": self.batch, "--checkpoint_every": self.checkpoint_every,
               "--keep": self.keep, "--eval_batch": self.eval_batch}
    bad = [f"{k} {v}" for k, v in numbers.items() if v < 1]
    if self.warmup_steps < 0 or self.eval_every < 0:
      bad.append("--warmup_steps/--eval_every below 0")
    if not 0 < self.dropout_keep_prob <= 1:
      bad.append(f"--dropout_keep_prob {self.dropout_keep_prob} (0 < p <= 1)")
    if not (self.learning_rate > 0 and 0 <= self.momentum < 1 and self.weight_decay >= 0):
      bad.append("--learning_rate > 0, 0 <= --momentum < 1, --weight_decay >= 0")
    if self.schedule not in SCHEDULES:
      bad.append(f"--schedule {self.schedule} (cosine or step)")
    if (self.steps is None) == (self.epochs is None) or (self.steps or 1) < 1 or (
        self.epochs is not None and not self.epochs > 0):
      bad.append("give --steps (>= 1) or --epochs (> 0), one of them")
    if bad:
      raise UserError(f"bad training settings: {'; '.join(bad)}")
    model.check_clip(self.clip_frames, self.crop_size)
    model.frozen_endpoints(self.freeze_until)
    model.resolve_precision(self.precision)
    if self.batchnorm not in model.BATCHNORM_MODES:
      raise UserError(f"--batchnorm {self.batchnorm!r}: expected frozen or trained")


def learning_rate(config: TrainConfig, step: int, total: int) -> float:
  """The learning rate of `step` (from 0) of `total`: a linear warm-up over `warmup_steps`, then
  a cosine decay to 0, or (`step`) a tenth at half and again at three quarters of the run."""
  if step < config.warmup_steps:
    return config.learning_rate * (step + 1) / config.warmup_steps
  if config.schedule == "step":
    return config.learning_rate * 0.1 ** sum(step >= total * f for f in (0.5, 0.75))
  done = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
  return config.learning_rate * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))


def _worker(strategy: tf.distribute.Strategy) -> tuple[int, int, bool]:
  """(this process's index, process count, whether optimizer updates run outside the replicas)
  under `strategy`: several processes only under `MultiWorkerMirroredStrategy`, where Sonnet's
  optimizers may not run in a replica, so updates are applied once per process instead (one
  replica per process)."""
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return 0, 1, False
  resolver = strategy.cluster_resolver
  spec = resolver.cluster_spec().as_dict()
  order = [("chief", i) for i in range(len(spec.get("chief", ())))] + [
      ("worker", i) for i in range(len(spec.get("worker", ())))]
  if strategy.num_replicas_in_sync != len(order):
    raise UserError(f"multi-worker training takes one device per worker process; this one sees "
                    f"{strategy.num_replicas_in_sync // len(order)} (set CUDA_VISIBLE_DEVICES)")
  return order.index((resolver.task_type, resolver.task_id)), len(order), True


class Trainer:
  """One training run: build, resume, step, evaluate, save."""

  def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy | None = None):
    config.check()
    self.config = config
    self.strategy = strategy or tf.distribute.get_strategy()
    self.worker, self.workers, self.apply_outside = _worker(self.strategy)
    self.replicas = self.strategy.num_replicas_in_sync
    if config.batch % self.replicas:
      raise UserError(f"--batch {config.batch} does not split evenly over {self.replicas} "
                      f"replicas; use a multiple of {self.replicas}")
    self.labels = data.read_labels(config.records)
    self.streams = config.streams
    self.train_set = data.scan(config.records, self.streams)
    self.eval_set = None
    if config.eval_records:
      data.check_same_labels(self.labels, data.read_labels(config.eval_records),
                             config.eval_records)
      self.eval_set = data.scan(config.eval_records, self.streams, self.labels, every_class=False)
    per_epoch = data.steps_per_epoch(self.train_set.size, config.batch)
    self.total = config.steps or max(1, round((config.epochs or 1) * per_epoch))
    root = Path(config.output_dir)
    self.folder = root if self.worker == 0 else root / f"worker-{self.worker}"
    self.shape = data.ClipShape(self.streams, config.clip_frames, config.crop_size, config.flip)
    self.precision = model.resolve_precision(config.precision)
    if config.precision == model.AUTO:
      progress.note(f"precision auto: computing in {self.precision} on this machine")
    elif self.precision != "float32" and (warning := precision_warning(self.precision)):
      progress.warn(warning)

  def prepare(self) -> None:
    """Builds the towers and the optimizer and loads the starting weights (`init`), for a run
    that starts afresh (`run` does this itself)."""
    self._build()
    self._initialise()

  def _build(self) -> None:
    """Towers, optimizer and checkpoint, made where the strategy wants the variables."""
    distributed = not self.apply_outside and self.strategy is not tf.distribute.get_strategy()
    scope = (lambda: self.strategy.scope()) if distributed else contextlib.nullcontext
    tf.random.set_seed(self.config.seed)  # the new logits and `scratch` weights
    self.rate = tf.Variable(self.config.learning_rate, trainable=False, name="learning_rate")
    with scope():
      self.towers = model.build_towers(self.streams, len(self.labels))
      self.optimizer = snt.optimizers.Momentum(self.rate, self.config.momentum)
    self.variables = [v for s in self.streams for v in model.trained_variables(
        self.towers[s], self.config.freeze_until)]
    with scope():  # the momentum slots, made now: a replicated step cannot make variables
      self.optimizer._initialize(self.variables)  # pylint: disable=protected-access
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    self.checkpoint = tf.train.Checkpoint(towers=self.towers, optimizer=self.optimizer,
                                          step=self.step)

  def run(self) -> dict:
    """Trains to the last step (resuming from the run folder's last checkpoint) and returns
    the run's state (step, seconds, top-1s)."""
    config = self.config
    run = RunFolder(self.folder, "training run")
    with run.locked():
      run.check_settings(config.record())
      self._build()
      state = self._resume()
      if state["step"] < self.total:
        self._train(state)
      self._write_summary(state)
    return state

  def _resume(self) -> dict:
    """The state of the last checkpoint, loaded (or of the starting weights, loaded)."""
    state = {"step": 0, "seconds": 0.0, "top1": None, "best_top1": None, "best_step": None,
             "loss": None, "train_top1": None}
    saving.clean(self.folder)
    found = saving.saved(self.folder)
    if not found:
      self._initialise()
      return state
    saved = saving.restore(self.checkpoint, found[-1])
    state.update({k: v for k, v in saved.items() if k in state})
    state["step"] = int(self.step.numpy())
    progress.note(f"resuming {self.folder} at step {state['step']} of {self.total}")
    self._catch_up(state)
    return state

  def _catch_up(self, state: dict) -> None:
    """Writes what a kill right after the last checkpoint prevented: `best/` when that step
    was the best, and the released model with `state.json`."""
    best = self.folder / saving.BEST_DIR
    if state["best_step"] == state["step"] and (
        saving.read_state(best).get("step") or 0) < state["step"]:
      saving.write(self.checkpoint, state, best)
    if saving.read_state(self.folder).get("step") != state["step"]:
      self._publish(state)

  def _initialise(self) -> None:
    for stream, init in self.config.inits().items():
      model.initialise(self.towers[stream], stream, init, self.config.checkpoint_dir,
                       self.config.download)

  def _dataset(self, first_step: int):
    config = self.config

    def batches(context: tf.distribute.InputContext) -> tf.data.Dataset:
      feed = data.Feed(config.batch, context.input_pipeline_id, context.num_input_pipelines,
                       context.get_per_replica_batch_size(config.batch))
      return data.training_batches(self.train_set, self.shape, config.seed, feed, first_step)

    return self.strategy.distribute_datasets_from_function(batches)

  def _replica_step(self, inputs, labels, step):
    config = self.config
    context = tf.distribute.get_replica_context()
    seed = tf.stack([tf.constant(config.seed, tf.int64),
                     step * self.replicas + tf.cast(context.replica_id_in_sync_group, tf.int64)])
    with tf.GradientTape() as tape:
      logits = self._logits(inputs, True, seed)
      losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
      loss = tf.reduce_sum(losses) / config.batch
    grads = context.all_reduce("sum", tape.gradient(loss, self.variables))
    grads = [g + config.weight_decay * v if v.shape.rank == 5 else g
             for g, v in zip(grads, self.variables)]
    if not self.apply_outside:
      self.optimizer.apply(grads, self.variables)
    correct = tf.reduce_sum(tf.cast(tf.argmax(logits, -1) == labels, tf.float32))
    loss, correct = context.all_reduce("sum", [loss, correct])
    return (loss, correct, grads) if self.apply_outside else (loss, correct)

  def _logits(self, inputs, is_training: bool, seed=None):
    return tf.add_n([model.logits(self.towers[s], inputs[s], is_training,
                                  self.config.freeze_until, self.config.batchnorm,
                                  self.config.dropout_keep_prob, seed, self.precision)
                     for s in self.streams])

  def step_function(self):
    """The training step, a `tf.function` of ((inputs, labels), step number) applying one
    update to the trained variables and returning (loss, correct): the global batch's mean
    cross-entropy and its count of right top-1 predictions."""
    @tf.function
    def step(batch, number):
      inputs, labels = batch
      out = self.strategy.run(self._replica_step, args=(inputs, labels, number))
      loss, correct = (self.strategy.experimental_local_results(v)[0] for v in out[:2])
      if self.apply_outside:
        self.optimizer.apply(self.strategy.experimental_local_results(out[2])[0], self.variables)
      return loss, correct
    return step

  def _train(self, state: dict) -> None:
    config = self.config
    first = state["step"]
    iterator = iter(self._dataset(first))
    step_fn = self.step_function()
    writer = tf.summary.create_file_writer(str(self.folder / "tensorboard"))
    started, examples = time.monotonic(), 0
    eval_every = config.eval_every or config.checkpoint_every
    with progress.bar(self.total, "training", "step", initial=first) as bar, writer.as_default():
      for number in range(first, self.total):
        self.rate.assign(learning_rate(config, number, self.total))
        try:
          batch = next(iterator)
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
          raise UserError(f"{config.records}: a record cannot be read "
                          f"({records.tf_message(e)[:300]})") from None
        loss, correct = step_fn(batch, tf.constant(number, tf.int64))
        loss = float(loss)
        if not math.isfinite(loss):
          raise UserError(f"the loss became {loss} at step {number + 1}; lower --learning_rate")
        self.step.assign(number + 1)
        examples += config.batch
        state.update(loss=loss, step=number + 1, train_top1=float(correct) / config.batch)
        rate = examples / max(1e-9, time.monotonic() - started)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", ex_s=f"{rate:.1f}", refresh=False)
        for tag, value in (("loss", loss), ("top1", state["train_top1"]),
                           ("learning_rate", float(self.rate)), ("examples_per_second", rate)):
          _scalar(f"train/{tag}", value, step=number + 1)
        last = number + 1 == self.total
        best = False
        if self.eval_set is not None and ((number + 1) % eval_every == 0 or last):
          best = self._evaluate(state, number + 1)
        checkpoint = (number + 1) % config.checkpoint_every == 0 or last
        if checkpoint:
          state["seconds"] += time.monotonic() - started
          started, examples = time.monotonic(), 0
          saving.save(self.checkpoint, state, self.folder, config.keep)
        if best:
          saving.write(self.checkpoint, state, self.folder / saving.BEST_DIR)
        if checkpoint:
          self._publish(state)
      writer.flush()

  def _evaluate(self, state: dict, number: int) -> bool:
    """Top-1 over the evaluation records (centre window and crop); whether it is the best."""
    assert self.eval_set is not None
    @tf.function
    def predict(inputs):
      return tf.argmax(self._logits(inputs, False), -1)

    right = seen = 0
    for inputs, labels in data.evaluation_batches(self.eval_set, self.shape,
                                                  self.config.eval_batch):
      right += int(tf.reduce_sum(tf.cast(predict(inputs) == labels, tf.int32)))
      seen += int(labels.shape[0])
    top1 = right / max(seen, 1)
    _scalar("eval/top1", top1, step=number)
    progress.note(f"step {number}: eval top-1 {top1:.4f} over {seen} clips")
    state["top1"] = top1
    if state["best_top1"] is not None and top1 <= state["best_top1"]:
      return False
    state.update(best_top1=top1, best_step=number)
    return True

  def _publish(self, state: dict) -> None:
    """The model in the released layout (each stream folder replaced whole), the labels, then
    `state.json`: the run as a checkpoint for the other commands, and for people."""
    model.export(self.towers, self.labels, self.folder)
    with atomic_write(self.folder / data.CLASS_LIST_FILE) as f:
      f.write("".join(f"{n}\n" for n in self.labels))
    write_json(self.folder / saving.STATE_FILE, state)

  def _write_summary(self, state: dict) -> None:
    def top(value):
      return "-" if value is None else f"{100 * value:.2f}%"

    best_at = f" (step {state['best_step']})" if state["best_step"] else ""
    loss = "-" if state["loss"] is None else f"{state['loss']:.4f}"
    rows = "\n".join(f"| {k} | {v} |" for k, v in self.config.record().items())
    text = (f"# Training run\n\n"
            f"- steps: {state['step']} of {self.total} (batch {self.config.batch}, "
            f"{self.replicas} replica{'s' if self.replicas > 1 else ''}, "
            f"computing in {self.precision})\n"
            f"- classes: {len(self.labels)}; training clips: {self.train_set.size}"
            f"{f'; evaluation clips: {self.eval_set.size}' if self.eval_set else ''}\n"
            f"- final loss: {loss}\n"
            f"- evaluation top-1: final {top(state['top1'])}, best {top(state['best_top1'])}"
            f"{best_at}\n"
            f"- training time: {state['seconds'] / 60:.1f} min\n\n"
            f"| setting | value |\n|---|---|\n{rows}\n")
    with atomic_write(self.folder / SUMMARY_FILE) as f:
      f.write(text)


def _scalar(tag: str, value: float, step: int) -> None:
  """A TensorBoard scalar (the `scalars` plugin's record) without the tensorboard package."""
  metadata = summary_pb2.SummaryMetadata()
  metadata.plugin_data.plugin_name = "scalars"
  tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=metadata)


def train(config: TrainConfig, strategy: tf.distribute.Strategy | None = None) -> dict:
  """Runs (or resumes) the training run `config` under `strategy` (default: the current one);
  returns its state: step, seconds, loss, top1, best_top1, best_step."""
  return Trainer(config, strategy).run()
