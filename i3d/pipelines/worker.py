"""The start of each local Beam worker process: `pipeline_options` names this module in
`--beam_plugins`, so Beam's worker imports it as it starts, before it asks the launcher for work
or loads a step (and TensorFlow with it).

Like a pool worker (`i3d.runs.executors`), the worker dies with its launcher (`lifeline`: Beam
starts it through a shell, which a `kill -9` of the launcher would leave behind with the worker),
and it loads TensorFlow as quietly as the `i3d` command does (`env.set_library_defaults`).
"""

from i3d._util import env, lifeline

env.set_library_defaults()
lifeline.die_with_parent()
