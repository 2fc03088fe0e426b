# lit configuration for the loop IR golden tests (tessel-opt + FileCheck).
# Run through the configured site file in the build dir (see README.md):
#   python3 /usr/lib/llvm-19/build/utils/lit/lit.py -v BUILD/test/Loop
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tessel_lit  # noqa: E402

tessel_lit.configure(config, lit_config, "tessel-loop", ".tir", "Loop", os.path.dirname(__file__))
