"""Campaigns: many independent closed-loop runs, the combinations of a campaign file's axes.

- spec: the campaign file (scenarios, axes, variants, groups), checked;
- expand: the runs it makes (RunPlan: the expanded scenario, its files, a stable id);
- bundle: the files a run's scenario reads, carried with it;
- execute: one run, wherever it executes (`execute_run(payload) -> result`, plain data);
- local / cluster: K local worker processes, or a Dask distributed cluster;
- results / aggregate: the run folders, the table of one row per run, the verdict;
- runner: all of it (`run_campaign`); bench: throughput for `sisnbms bench`.
"""

from host.campaign.expand import RunPlan, expand
from host.campaign.runner import CampaignOutcome, run_campaign
from host.campaign.spec import CampaignSpec, load_spec, parse_spec

__all__ = [
    "CampaignOutcome",
    "CampaignSpec",
    "RunPlan",
    "expand",
    "load_spec",
    "parse_spec",
    "run_campaign",
]
