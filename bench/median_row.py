#!/usr/bin/env python3
"""One row of an alternating benchmark's table.

    median_row.py NAME BATCH "FIRST TIMES" "SECOND TIMES"

prints NAME, BATCH, the median of each side's times and first / second.
"""
import statistics
import sys

name, batch, first, second = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
a, b = statistics.median(map(float, first)), statistics.median(map(float, second))
print(f"{name:<18} {batch:>5} {a:12.2f} {b:12.2f} {a / b:8.3f}")
