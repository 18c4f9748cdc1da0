"""`i3d features --runner`: the features of `i3d.embed.features.extract_videos` (and, from
records, of `extract_records`) on Apache Beam, the same files whatever the number of workers.

The Beam executor (`options.beam_executor`) runs `extract_unit` over the work units: each video
(id, path), or, from records, each shard with the ids of its clips (read whole by one worker).
A unit's outcomes are those of the single-process run (`features.job_outcomes`, with the
extractor loaded once per worker): OUTPUT_DIR/{id}_{stream}.npy, then {id}.json, each written
atomically, and one outcome per id for the launcher's failures.jsonl.

The launcher (`extract`) is `run_jobs`, as for one process: it skips the videos finished
earlier, holds the folder's lock, and appends the failures in job order. Nothing is lost or done
twice: a video's files have names fixed by its id and are renamed into place, so a retried
bundle rewrites the same files and a killed run resumes from the videos whose JSON is there.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

from apache_beam.options.pipeline_options import PipelineOptions

from i3d.embed import features
from i3d.embed.features import ExtractorSpec
from i3d.inputs.settings import InputSettings
from i3d.pipelines.options import beam_executor, by_shard
from i3d.runs import folder as runs

OUTCOMES_FILE = ".beam_outcomes.json"

Outcome = tuple[str, str, Optional[str]]  # id, source, None or why it failed


def extract_unit(unit: tuple[str, Any], spec: ExtractorSpec, output_dir: str,
                 input_settings: InputSettings, use_cache: bool = True, progress: bool = False,
                 stored: Optional[dict] = None) -> list[Outcome]:
  """The outcomes of one work unit, its files written (`features.job_outcomes` with `spec`'s
  extractor, loaded once per worker): a video (id, path), or, with `stored`, a shard of records
  made with it and the ids of its clips. A shard that cannot be read fails each clip left with
  the reason instead of raising (an error Beam would retry forever). `progress` prints a line
  per video written."""
  jobs = [unit] if stored is None else [(vid, unit[0]) for vid in unit[1]]
  record = features.features_record(spec, input_settings, stored)
  outcomes: list[Outcome] = []
  try:
    for outcome in features.job_outcomes(features.cached_extractor(spec), output_dir, record,
                                         input_settings, jobs, use_cache=use_cache, stored=stored):
      outcomes.append(outcome)
      if progress and outcome[2] is None:
        print(f"{outcome[0]}: written", file=sys.stderr, flush=True)
  except Exception as e:  # noqa: BLE001 - one bad shard must not stop the run
    reason, done = runs.item_failure(e), {vid for vid, _, _ in outcomes}
    outcomes += [(vid, str(source), reason) for vid, source in jobs if vid not in done]
  return outcomes


def extract(spec: ExtractorSpec, jobs: Sequence[tuple[str, str | Path]], output_dir: str | Path,
            input_settings: InputSettings, options: PipelineOptions, use_cache: bool = True,
            threads: Optional[int] = None, progress: bool = True,
            stored: Optional[dict] = None) -> features.ExtractionResult:
  """`features.extract_videos` on the runner `options` name (the extractor is `spec`'s, loaded
  by each worker): the same files, and the same result. With `stored`, `features.extract_records`
  of the clips `jobs` (`example/id`, shard) of records made with it (`input_settings` are then
  the records')."""
  output_dir = Path(output_dir)
  features.check_jobs(jobs)
  run_unit = functools.partial(extract_unit, spec=spec, output_dir=str(output_dir),
                               input_settings=input_settings, use_cache=use_cache,
                               progress=progress, stored=stored)
  executor = beam_executor(options, threads, str(output_dir / OUTCOMES_FILE))

  def run(pending: Sequence[tuple[str, str | Path]], _start: Callable) -> features.Outcomes:
    if progress:
      print(f"{len(pending)} videos to extract, {len(jobs) - len(pending)} done earlier",
            file=sys.stderr)
    listed = [(vid, str(path)) for vid, path in pending]
    outcomes = {vid: (source, reason) for unit in executor(
        run_unit, listed if stored is None else by_shard(listed)) for vid, source, reason in unit}
    return [(vid, *outcomes[vid]) for vid, _ in pending]

  record = features.features_record(spec, input_settings, stored)
  return features.run_jobs(jobs, output_dir, record, run, progress=False)
