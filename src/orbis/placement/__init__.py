"""Where nodes go: site catalogue, flavor fit, ranking of candidate sites and fallback."""
