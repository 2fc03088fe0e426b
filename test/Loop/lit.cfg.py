# lit configuration for the loop IR golden tests (tessel-opt + FileCheck).
# Run through the configured site file in the build dir (see README.md):
#   python3 /usr/lib/llvm-19/build/utils/lit/lit.py -v BUILD/test/Loop
import os
import lit.formats

config.name = "tessel-loop"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".tir"]
config.excludes = ["README.md", "lit.cfg.py", "lit.site.cfg.py.in"]
config.test_source_root = os.path.dirname(__file__)

tools_dir = getattr(config, "tessel_tools_dir", None)
if not tools_dir:
    lit_config.fatal("run lit on the build directory's test/Loop (it holds lit.site.cfg.py)")
config.test_exec_root = os.path.join(config.tessel_obj_root, "test", "Loop")
llvm_bin = getattr(config, "llvm_tools_dir", "/usr/lib/llvm-19/bin")

config.environment["PATH"] = os.pathsep.join([tools_dir, llvm_bin, config.environment.get("PATH", os.environ.get("PATH", ""))])
config.substitutions.append(("tessel-opt", os.path.join(tools_dir, "tessel-opt")))
config.substitutions.append(("FileCheck", os.path.join(llvm_bin, "FileCheck")))
