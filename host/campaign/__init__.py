"""Campaigns: many independent closed-loop runs, the combinations of a campaign file's axes.

- spec: the campaign file (scenarios, axes, variants, groups), checked;
- expand: the runs it makes (RunPlan: the expanded scenario, its files, a stable id);
- bundle: the files a run's scenario reads, carried with it.
"""

from host.campaign.expand import RunPlan, expand
from host.campaign.spec import CampaignSpec, load_spec, parse_spec

__all__ = ["CampaignSpec", "RunPlan", "expand", "load_spec", "parse_spec"]
