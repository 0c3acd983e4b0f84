"""The `distributed` section: parameter-server against multi-worker training on 127.0.0.1.

KAML (MMoE + ADM + HKE + RLU) is trained by real `pipelines.train` processes on loopback,
once per strategy, at the same global batch (`--batch_size`: one synchronous step of both
workers under `multi_worker`, one worker's step under `parameter_server`, so a step trains on
`--batch_size` records either way):

* `multi_worker`: 2 workers (MultiWorkerMirroredStrategy);
* `parameter_server`: a chief, 2 workers and 2 ps tasks (the embedding tables sharded over
  both ps tasks at `MIN_SHARD_BYTES`).

Each run trains 2 epochs of `--throughput_steps` steps; the first (tracing, start-up) is
untimed, the second is timed (`TrainResult.epoch_seconds`). All processes share this host's
cores, so the figures compare the strategies' overheads (coordination, variable traffic over
gRPC), not a cluster's speed.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Sequence

from kaml_tf.training import cluster
from kaml_tf.training import strategies

from benchmarks.config import BenchmarkConfig
from benchmarks.config import ConfigError

SECTION = "distributed"
WORKERS = 2
PS_TASKS = 2
# Shards of at least 16 KiB: the id tables of simulated logs split over both ps tasks.
MIN_SHARD_BYTES = 16 << 10
TIMEOUT_S = 1800
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _jobs(name: str) -> Dict[str, int]:
  """Tasks by job, in start order: the servers before the chief."""
  if name == strategies.MULTI_WORKER:
    return {"worker": WORKERS}
  return {"ps": PS_TASKS, "worker": WORKERS, "chief": 1}


def _flags(config: BenchmarkConfig, name: str, model_dir: str) -> List[str]:
  return [
    f"--schema={config.required('schema', SECTION)}",
    f"--train={config.required('logs', SECTION)}",
    f"--stats={config.required('stats', SECTION)}",
    f"--model_dir={model_dir}",
    f"--strategy={name}",
    f"--ps_min_shard_bytes={MIN_SHARD_BYTES}",
    "--mask=adm",
    "--hke",
    "--rank_gamma=0.9",
    f"--batch_size={config.batch_size}",
    f"--shuffle_buffer={max(config.shuffle_buffer, 1)}",
    f"--steps_per_epoch={config.throughput_steps}",
    "--epochs=2",
  ]


def _train(config: BenchmarkConfig, name: str, folder: str) -> Dict[str, Any]:
  """Runs one cluster of `pipelines.train` to the end; its chief's `train_summary.json`."""
  model_dir = os.path.join(folder, name)
  sizes = _jobs(name)
  ports = iter(cluster.free_ports(sum(sizes.values())))
  addresses = {job: [f"127.0.0.1:{next(ports)}" for _ in range(n)] for job, n in sizes.items()}
  argv = [sys.executable, "-m", "pipelines.train"] + _flags(config, name, model_dir)
  processes = []
  try:
    for job, count in sizes.items():
      for index in range(count):
        env = dict(os.environ, TF_CONFIG=cluster.task_tf_config(addresses, job, index))
        log = open(os.path.join(folder, f"{name}-{job}{index}.log"), "wb")
        processes.append(
          (job, log, subprocess.Popen(argv, cwd=_ROOT, env=env, stdout=log, stderr=log))
        )
    # The chief (worker 0 under multi_worker) ends the run; ps and worker servers never exit.
    chief_index = 0 if name == strategies.MULTI_WORKER else len(processes) - 1
    _, chief_log, chief = processes[chief_index]
    if chief.wait(timeout=TIMEOUT_S) != 0:
      with open(chief_log.name, errors="replace") as f:
        tail = f.read()[-3000:]
      raise RuntimeError(f"{SECTION}: the {name} chief failed; its log ends with:\n{tail}")
    if name == strategies.MULTI_WORKER:
      for _, _, process in processes:
        process.wait(timeout=TIMEOUT_S)
  finally:
    for _, log, process in processes:
      if process.poll() is None:
        process.kill()
        process.wait()
      log.close()
  with open(os.path.join(model_dir, "train_summary.json"), encoding="utf-8") as f:
    return json.load(f)


def _figures(config: BenchmarkConfig, summary: Dict[str, Any], seconds: float) -> Dict[str, Any]:
  """Steps/s of the timed (second) epoch.

  Raises:
    ConfigError: naming `--logs` when an epoch ended early (a multi-worker epoch ends when a
      worker's share of the files runs out).
  """
  if summary["steps"] != 2 * config.throughput_steps:
    raise ConfigError(
      f"--logs: 2 epochs of --throughput_steps={config.throughput_steps} steps need "
      f"{config.throughput_steps * config.batch_size} records of --logs per epoch; the run "
      f"stopped after {summary['steps']} steps",
      "logs",
    )
  timed = summary["epoch_seconds"][-1]
  steps_per_second = config.throughput_steps / timed
  return {
    "steps_per_second": round(steps_per_second, 3),
    "samples_per_second": round(steps_per_second * config.batch_size, 1),
    "timed_epoch_seconds": round(timed, 3),
    "first_epoch_seconds": round(summary["epoch_seconds"][0], 3),
    "wall_seconds": round(seconds, 1),
    "final_total_loss": summary["history"][-1]["total"],
  }


def run(config: BenchmarkConfig) -> Dict[str, Any]:
  """The section: one run per strategy, in turn (never concurrently)."""
  result: Dict[str, Any] = {
    "global_batch": config.batch_size,
    "timed_steps": config.throughput_steps,
    "workers": WORKERS,
    "ps_tasks": PS_TASKS,
  }
  with tempfile.TemporaryDirectory(prefix="kaml-distributed-") as folder:
    for name in (strategies.MULTI_WORKER, strategies.PARAMETER_SERVER):
      started = time.time()
      summary = _train(config, name, folder)
      result[name] = _figures(config, summary, time.time() - started)
  result["parameter_server_over_multi_worker"] = round(
    result[strategies.PARAMETER_SERVER]["steps_per_second"]
    / result[strategies.MULTI_WORKER]["steps_per_second"],
    3,
  )
  return result


def summary(result: Dict[str, Any]) -> Sequence[str]:
  """One line per strategy, then the ratio."""
  lines = [
    f"{SECTION}: {name}: {result[name]['steps_per_second']:.2f} steps/s "
    f"({result[name]['samples_per_second']:,.0f} samples/s) at global batch "
    f"{result['global_batch']}"
    for name in (strategies.MULTI_WORKER, strategies.PARAMETER_SERVER)
  ]
  lines.append(
    f"{SECTION}: parameter_server / multi_worker steps/s = "
    f"{result['parameter_server_over_multi_worker']:.2f}"
  )
  return lines
