"""Experiment drivers: the suites behind RESULTS.md and the analyses of finished runs.

Run from the repository root as modules, e.g. ``python -m experiments.suites lora-vs-full``.
"""
