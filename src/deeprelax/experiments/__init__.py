"""Experiments: training harness, comparisons, labs. May depend on every other layer; nothing depends on it
except the command line."""
