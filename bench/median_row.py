#!/usr/bin/env python3
"""One row of an alternating benchmark's table.

    median_row.py NAME BATCH "FIRST TIMES" "SECOND TIMES" ["FIRST BESTS" "SECOND BESTS"]

prints NAME, BATCH, the median of each side's times and first / second; given each round's
fastest pass too, also each side's fastest over all rounds and their ratio. On a shared machine
a neighbour only ever adds time, so the fastest passes compare the code when the medians are
blurred by bursts.
"""
import statistics
import sys

name, batch = sys.argv[1], sys.argv[2]
first, second = (list(map(float, arg.split())) for arg in sys.argv[3:5])
a, b = statistics.median(first), statistics.median(second)
row = f"{name:<18} {batch:>5} {a:12.2f} {b:12.2f} {a / b:8.3f}"
if len(sys.argv) == 7:
    best_a, best_b = (min(map(float, arg.split())) for arg in sys.argv[5:7])
    row += f" {best_a:12.2f} {best_b:12.2f} {best_a / best_b:8.3f}"
print(row)
