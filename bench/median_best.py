#!/usr/bin/env python3
"""Reads one benchmark's JSON line (`regnet bench --json`, `ort_bench.py`) from standard input
and prints its median and fastest pass in ms: `MEDIAN BEST`, for `median_row.py`'s columns."""
import json
import sys

run = json.load(sys.stdin)
print(run["median_ms"], run["min_ms"])
