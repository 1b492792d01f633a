"""Data-quality gates: the policy, the pandera contracts, the check evaluations, freshness."""
