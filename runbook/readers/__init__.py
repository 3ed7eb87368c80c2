"""What reads a run after its checks: the history and what changed, waivers, the incident ticket
and escalation, notifications, metrics export, the evidence bundle, retention, shard merging,
and the layout of the reports folder they share."""
