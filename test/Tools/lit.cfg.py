# lit configuration for the command-line tool tests (tessel inspect, compile, run, conformance
# on small models + FileCheck). Run through the configured site file in the build dir:
#   python3 /usr/lib/llvm-19/build/utils/lit/lit.py -v BUILD/test/Tools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tessel_lit  # noqa: E402

tessel_lit.configure(config, lit_config, "tessel-tools", ".test", "Tools", os.path.dirname(__file__))
config.excludes.append("Inputs")
config.substitutions.append(("%tessel", os.path.join(config.tessel_tools_dir, "tessel")))
config.substitutions.append(("%examples", os.path.join(config.tessel_src_root, "examples")))
config.substitutions.append(("%python", "/usr/bin/python3"))
