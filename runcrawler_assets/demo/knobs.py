"""Every effect the demo archive holds, by name, so that tests of the analytics can check
what they recover.

The habits of the team are in `team.py` (`CLUSTERS`, `USERS`); the effects are the
fields of `DemoKnobs`, whose defaults (`KNOBS`) make the archive:

- Dates: runs are set up over `span_days` (730) days ending `end` (2026-10-31),
  more of them lately; each user has launch hours and weekdays. run.params'
  mtime is `created_at`; the newest log's mtime is the run's end. `truncated`
  runs end more than 30 days before `end`; `running` runs (`running_share`, 1 %)
  start during its last two days (their truth assumes a crawl within the 2-day
  running window after writing).
- Efficiency (s·proc/(it·node)) = `efficiency_base[dimension]` (3D 1.1e-5, 2D 5.5e-6)
  × the cluster's `speed` (topaze 0.6 < jean-zay 0.8 < kraken 1.0 < irene 1.35)
  × (1 + `nodes_per_proc_knee` / nodes per process) (knee 2000: too few mesh
  nodes per process costs communication)
  × `reactive_flow_factor` (1.45) when reactive_flow
  × `les_model_factors` (no_model 1.0, smago 1.08, wale 1.12, sigma 1.18)
  × lognormal noise (`efficiency_sigma` 0.2). The log prints it (versions that
  do) and its summary agrees with it.
- Failures: a run fails for its settings with probability 1 - (1 - a)(1 - b),
  a = `high_cfl_failure` (0.3) when CFL > `high_cfl_threshold` (0.9), b =
  `no_artvisc_failure` (0.4) with `no_artvisc`, as `settings_failure_categories`
  (numerical_instability, thermo_table); else for any reason with probability
  `failure_base` (0.25) × the user's `failure_factor` (0.6 to 1.6), as
  `failure_categories`. `not_started_share` (3 %) of runs have no log. About
  28 % of runs end failed, killed or truncated.
- No effect: `convection_scheme` is drawn uniformly, independently of user and
  settings, and changes nothing: analytics must not flag it. `ncell_group`
  has no effect either but follows user habits, so it correlates with the
  users' failure rates and efficiencies (a confounder, not a cause).
- Logs: a few KB mostly (about 40 iteration lines), `verbose_log_share` (0.15 %)
  print every iteration (up to several MB); five solver versions with their
  own dashes, label case and spacing; restarts (`restart_share`, older logs
  with older mtimes), gzip, CRLF, invalid UTF-8 bytes. Error lines come from
  `ERROR_TEMPLATES` (avbp_output.py): a failure stops the log at a milestone
  that fits it, an MPI_ABORT follows most solver errors, stderr lines (verdicts,
  MPI, runtime) go to the scheduler file for users who copy it, else into the
  log; some verdicts follow a solver message (the verdict decides).
- Real logs' mess (issue #14, avbp_mess.py, a few percent of runs each, from a
  random stream of its own): logs in logs/, log/, output/; gzip under any name;
  module, container, network and loader lines before the banner, a loader
  warning or an Open MPI help box in the loop; errors printed by several ranks
  at once or wrapped onto a second line; progress bars redrawn with bare `\\r`;
  launches that fail before AVBP prints anything (`launch.*` templates); Slurm
  cancelling the step after a crash; run.params with Windows paths.
- Remedies (issue 18, avbp_remedies.py): what users do after a failure, each run
  its folder's next by created_at, set up at the user's next habitual hour after
  the failure ended, with run.params identical but for what the pattern changes.
  Fixes: `fix_share` (0.25) of numerical_instability and thermo_table failures are
  followed by a success with only CFL lowered (times `fix_cfl_factors`, 0.7 to
  0.8, to one decimal: 1.0 -> 0.7).
  Reruns: `rerun_share` (0.25) of `rerun_categories` (segfault, mpi_abort,
  cancelled: transient) are followed by a success with run.params unchanged.
  Campaigns: `campaign_share` (0.85) of time_limit runs are continued by 1 to 3
  runs whose only change is `initial_solution_file`, into the previous run's
  SOLUT/; killed by the time limit again until the last, which succeeds
  (`campaign_success`, 0.75, on enough more processes to fit the limit) or fails
  (time_limit, or as `campaign_failure_categories`); a run that would need more
  than six times its processes to succeed is not continued. A follow-up keeps
  its predecessor's version, processes and efficiency (a campaign's success:
  more processes, by the efficiency model). Only follow-ups that fit before the
  folder's next run are planted (a campaign cut short ends as drawn sooner).
- Versions: runs of `regressed_version` (7.14.0) that would succeed fail with
  probability `regression_failure` (0.15), as `regression_categories`
  (numerical_instability, segfault); `neutral_version` (7.13.1) changes nothing.
  Follow-ups are never flipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any


def _knob(weights: Mapping[str, float]) -> Any:
    """A DemoKnobs field holding a read-only mapping (dataclasses refuse a shared default)."""
    return field(default_factory=lambda: MappingProxyType(dict(weights)))


@dataclass(frozen=True)
class DemoKnobs:
    """Every effect the demo archive holds, by name (see the module docstring)."""

    end: date = date(2026, 10, 31)
    span_days: int = 730
    efficiency_base: Mapping[int, float] = field(
        default_factory=lambda: MappingProxyType({3: 1.1e-5, 2: 5.5e-6})
    )
    nodes_per_proc_knee: float = 2000.0
    reactive_flow_factor: float = 1.45
    les_model_factors: Mapping[str, float] = _knob(
        {"no_model": 1.0, "smago": 1.08, "wale": 1.12, "sigma": 1.18}
    )
    efficiency_sigma: float = 0.2
    failure_base: float = 0.25
    failure_categories: Mapping[str, float] = _knob(
        {
            "time_limit": 0.15,
            "out_of_memory": 0.07,
            "cancelled": 0.11,
            "segfault": 0.08,
            "numerical_instability": 0.1,
            "thermo_table": 0.05,
            "mixture": 0.07,
            "input_file": 0.12,
            "mpi_abort": 0.06,
            "truncated": 0.1,
            "unknown": 0.09,
        }
    )
    high_cfl_threshold: float = 0.9
    high_cfl_failure: float = 0.3
    no_artvisc_failure: float = 0.4
    settings_failure_categories: Mapping[str, float] = _knob(
        {"numerical_instability": 0.75, "thermo_table": 0.25}
    )
    no_effect_setting: str = "convection_scheme"
    not_started_share: float = 0.03
    running_share: float = 0.01
    restart_share: float = 0.12
    verbose_log_share: float = 0.0015
    gzip_share: float = 0.3  # of the logs a "dated" user keeps, once finished
    crlf_log_share: float = 0.04
    invalid_utf8_share: float = 0.03
    # Real logs' mess (avbp_mess.py), drawn from a random stream of its own. Shares of
    # runs, except where said: of the runs whose ending has that kind of line.
    log_folder_share: float = 0.04  # logs and scheduler file in logs/, log/ or output/
    any_name_gzip_share: float = 0.04  # a finished run's logs gzipped whatever their name
    preamble_noise_share: float = 0.06  # modules, container, network lines before the banner
    loop_noise_share: float = 0.04  # a loader warning or Open MPI help box in the loop
    progress_bar_share: float = 0.04  # grid partitioning redrawn with bare \r
    windows_params_share: float = 0.03  # run.params with Windows paths
    rank_printed_error_share: float = 0.35  # of solver errors: several ranks print it at once
    wrapped_error_share: float = 0.3  # of labelled solver errors: wrapped onto a second line
    launch_failure_share: float = 0.3  # of segfault, mpi_abort, unknown runs: no AVBP output
    step_cancelled_share: float = 0.5  # of segfaults: Slurm then cancels the step
    help_summary_share: float = 0.5  # of MPI_ABORTs: Open MPI's help-message summary follows
    # Remedies (avbp_remedies.py): follow-ups of failed runs, drawn from a stream of their own.
    fix_share: float = 0.25  # of settings failures (`settings_failure_categories`)
    fix_cfl_factors: tuple[float, ...] = (0.7, 0.75, 0.8)  # the fix's CFL, of the failed one
    rerun_share: float = 0.25  # of `rerun_categories` failures
    rerun_categories: tuple[str, ...] = ("segfault", "mpi_abort", "cancelled")
    campaign_share: float = 0.85  # of time_limit runs: continued from their last solution
    campaign_success: float = 0.75  # of campaigns: the last run succeeds
    campaign_failure_categories: Mapping[str, float] = _knob(
        {"time_limit": 0.6, "numerical_instability": 0.25, "segfault": 0.15}
    )
    # Versions: one that fails more, one that changes nothing (avbp_output.SOLVER_VERSIONS).
    regressed_version: str = "7.14.0"
    neutral_version: str = "7.13.1"
    regression_failure: float = 0.15  # of its runs that would succeed
    regression_categories: Mapping[str, float] = _knob(
        {"numerical_instability": 0.6, "segfault": 0.4}
    )


KNOBS = DemoKnobs()
