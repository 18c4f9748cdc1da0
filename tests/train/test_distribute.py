"""tf.distribute: two logical CPU devices step like one, and two worker processes on localhost
(MultiWorkerMirroredStrategy) finish and agree, both with BatchNorm trained (statistics of the
global batch, all-reduced, and their gradients). Devices and the cluster are set before
TensorFlow starts, so each test runs in fresh processes: the device test one process training
both ways, the worker test two. Tiny: 32x32 crops, 9 frames, batch 4, 2 steps, layers up to
Mixed_5b frozen (the replicated step, gradient sums and BatchNorm's all-reduced statistics are the
same code for every layer; a short backward pass keeps the first step's trace short). Training
every layer from random weights at these sizes is ill-conditioned (BatchNorm statistics over a
handful of values): one device with oneDNN off moves deep offsets 100x more than two devices do,
so the comparison stays on the trained Mixed_5c, where the two agree to ~2e-6."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tests.support.clips import REPO
from tests.train.support import write_set

SCRIPT = """
import sys, tensorflow as tf
records, output, mode, batchnorm = sys.argv[1:]
if mode == "devices":
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import sonnet as snt
from i3d.train import loop
from i3d.cli.train import strategy_for

def train(folder, strategy):
  loop.train(loop.TrainConfig(
      records=records, output_dir=folder, init="scratch", clip_frames=9, crop_size=32, batch=4,
      steps=2, checkpoint_every=2, batchnorm=batchnorm, dropout_keep_prob=1.0,
      learning_rate=0.01, freeze_until="Mixed_5b", precision="float32"), strategy)

if mode == "workers":
  train(output, strategy_for(True))
else:
  train(output + "/one", None)
  train(output + "/two",
        snt.distribute.Replicator([d.name for d in tf.config.list_logical_devices("CPU")]))
"""


def _weights(folder):
  reader = tf.train.load_checkpoint(str(folder / "rgb" / "model.ckpt"))
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


def _start(args, env=None):
  return subprocess.Popen([sys.executable, "-c", SCRIPT, *map(str, args)], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process):
  out, _ = process.communicate(timeout=600)
  assert process.returncode == 0, out[-3000:]


def _close(a, b):
  assert a.keys() == b.keys()
  for name in a:
    np.testing.assert_allclose(a[name], b[name], rtol=1e-3, atol=1e-5, err_msg=name)


def test_two_devices_step_as_one(tmp_path):
  _finish(_start([write_set(tmp_path / "train", 2, frames=10), tmp_path, "devices", "trained"]))
  one = _weights(tmp_path / "one")
  unit = "RGB/inception_i3d/Mixed_5c/Branch_0/Conv3d_0a_1x1/batch_norm/"
  assert np.abs(one[unit + "beta"]).max() > 0
  assert np.abs(one[unit + "moving_mean"]).max() > 0  # batch statistics were used and moved
  _close(one, _weights(tmp_path / "two"))


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("localhost", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_two_workers_finish_and_agree(tmp_path):
  records = write_set(tmp_path / "train", 2, frames=10)
  cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
  workers = [_start([records, tmp_path / "run", "workers", "trained"], {"TF_CONFIG": json.dumps(
      {"cluster": cluster, "task": {"type": "worker", "index": i}})}) for i in range(2)]
  for worker in workers:
    _finish(worker)
  first = _weights(tmp_path / "run")
  name = "RGB/inception_i3d/Mixed_5c/Branch_0/Conv3d_0a_1x1/batch_norm/moving_mean"
  assert np.abs(first[name]).max() > 0  # trained BatchNorm moved its averages
  _close(first, _weights(tmp_path / "run" / "worker-1"))
