#!/usr/bin/env python3
"""Writer round trip over the ONNX backend conformance models.

Every test model is optimized at -O LEVEL and written by `tessel optimize`; each written model
must pass onnx.checker.check_model(full_check=True) whenever the original does, and the
conformance suites run on the written models (with the original test data) must give the same
results as the originals: the checked-in expected-failure list applies unchanged.
Usage: onnx-roundtrip.py TESSEL TESTDATA EXPECTED_FAILURES [LEVEL]. Exit 77 when TESTDATA is absent.
"""
import os
import subprocess
import sys
import tempfile

import onnx

SUITES = ["node", "pytorch-converted", "pytorch-operator", "simple"]


def checks(path):
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        return None
    except Exception as e:  # noqa: BLE001 - any checker complaint is a finding
        return str(e).replace("\n", " ")[:300]


def main():
    tessel, data, expected = sys.argv[1:4]
    level = sys.argv[4] if len(sys.argv) > 4 else "3"
    if not os.path.isdir(data):
        print(f"SKIP: {data} not found (Debian's libonnx-testdata is not installed)")
        return 77
    bad = 0
    written = 0
    with tempfile.TemporaryDirectory() as tmp:
        for suite in SUITES:
            sdir = os.path.join(data, suite)
            if not os.path.isdir(sdir):
                continue
            for test in sorted(os.listdir(sdir)):
                src = os.path.join(sdir, test)
                model = os.path.join(src, "model.onnx")
                if not os.path.isfile(model):
                    continue
                dst = os.path.join(tmp, suite, test)
                os.makedirs(dst)
                for e in os.listdir(src):
                    if e.startswith("test_data_set_"):
                        os.symlink(os.path.join(src, e), os.path.join(dst, e))
                out = os.path.join(dst, "model.onnx")
                r = subprocess.run([tessel, "optimize", model, "-O" + level, "-o", out],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    # A model tessel cannot load stays without model.onnx: the runner skips it,
                    # and the same model fails to load (as expected) in the -O0 suites.
                    continue
                written += 1
                if checks(model) is None:
                    why = checks(out)
                    if why:
                        print(f"CHECKER REJECTS {suite}/{test}: {why}")
                        bad += 1
        print(f"wrote {written} models at -O{level}; {bad} rejected by onnx.checker")
        dirs = [os.path.join(tmp, s) for s in SUITES if os.path.isdir(os.path.join(tmp, s))]
        r = subprocess.run([tessel, "conformance", "-j", "2", "--expected-failures", expected] + dirs,
                           capture_output=True, text=True)
        print(r.stdout, end="")
        # Unexpected passes cannot happen here; tests skipped for want of a loadable model are
        # the expected failures that fail at load time.
        unexpected = [l for l in r.stdout.splitlines() if l.startswith("UNEXPECTED FAIL")]
        if unexpected:
            bad += len(unexpected)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
