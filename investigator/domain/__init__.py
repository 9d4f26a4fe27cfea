"""The workspace domain: triage, casework, investigation, handling plans, deadlines, rewards,
protection, archive and retention, audit, statistics, notices. Framework-free; every access
question is asked of investigator.policy."""
