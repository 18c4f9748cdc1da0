"""Beam's options: quiet workers unless asked, and a failed pipeline as one line (issue 23)."""

from i3d.pipelines import options


def test_beam_workers_log_only_what_stops_them_unless_asked():
  quiet = options.pipeline_options("DirectRunner", 1).get_all_options()
  assert quiet["default_sdk_harness_log_level"] == "CRITICAL"
  asked = options.pipeline_options("DirectRunner", 1, ["--default_sdk_harness_log_level=INFO"])
  assert asked.get_all_options()["default_sdk_harness_log_level"] == "INFO"


def test_a_pipeline_failing_on_a_full_disk_is_one_line():
  beam_error = RuntimeError("Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                            "OSError: [Errno 28] No space left on device: '/out/.staging/r'\n")
  message = str(options.pipeline_error(beam_error))
  assert "\n" not in message
  assert message == ("the Beam pipeline failed: OSError: [Errno 28] No space left on device: "
                     "'/out/.staging/r'; the machine's failure (disk, permissions, memory): fix "
                     "it and run again to resume")
