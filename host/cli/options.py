"""Plausible ranges of the command-line options that are not a cell or step quantity.

The experiment and scenario quantities (durations, periods, ambient, currents, ...) have
theirs in cellmodel.quantities; these are the host's own. A value outside (or not
finite) is exit 2 naming the option. README's "Command line" lists them.
"""

from __future__ import annotations

from cellmodel.quantities import Range

# flash --boot-timeout: a board boots in seconds; ten minutes is a hung board.
BOOT_TIMEOUT_S = Range(0.1, 600.0, "s")
# campaign --workers: local worker processes.
WORKERS = Range(1, 1024, "processes")
# micropython build --jobs: parallel make jobs.
MAKE_JOBS = Range(1, 256, "jobs")

CLI = "command line"
