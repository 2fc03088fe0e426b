# Shared lit setup for tessel's golden-test folders (test/Graph, test/Loop): each folder's
# lit.cfg.py calls configure() with its name, file suffix and folder.
import os

import lit.formats


def configure(config, lit_config, name, suffix, subdir, source_root):
    """tessel-opt + FileCheck tests of files ending in `suffix` under test/`subdir`."""
    config.name = name
    config.test_format = lit.formats.ShTest(execute_external=True)
    config.suffixes = [suffix]
    config.excludes = ["README.md", "lit.cfg.py", "lit.site.cfg.py.in"]
    config.test_source_root = source_root

    tools_dir = getattr(config, "tessel_tools_dir", None)
    if not tools_dir:
        lit_config.fatal("run lit on the build directory's test/%s (it holds lit.site.cfg.py)" % subdir)
    config.test_exec_root = os.path.join(config.tessel_obj_root, "test", subdir)
    llvm_bin = getattr(config, "llvm_tools_dir", "/usr/lib/llvm-19/bin")

    config.environment["PATH"] = os.pathsep.join(
        [tools_dir, llvm_bin, config.environment.get("PATH", os.environ.get("PATH", ""))])
    config.substitutions.append(("tessel-opt", os.path.join(tools_dir, "tessel-opt")))
    config.substitutions.append(("FileCheck", os.path.join(llvm_bin, "FileCheck")))
