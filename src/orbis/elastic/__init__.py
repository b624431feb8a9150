"""Elastic clusters: the monitor reads a batch system's queue and node states from its
front-end (slurm.py), decides which workers to power on or off and why (policy.py, pure), and
acts through the service (monitor.py). See docs/elastic.md."""
