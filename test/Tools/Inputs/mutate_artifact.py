"""Truncates and corrupts a .tsl artifact in many ways and runs `tessel inspect` on each copy:
every one must be rejected with the runtime's error (exit status 1, one `error: PATH: ...` line
on stderr), never a crash, a hang or output that pretends the file is fine.

usage: mutate_artifact.py TESSEL ARTIFACT WORKDIR
Prints one line per kind of mutation and `mutations: N rejected, 0 not rejected`; exits 1 when
any copy was not rejected.
"""
import os
import subprocess
import sys


def main():
    tessel, artifact, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    data = open(artifact, "rb").read()
    n = len(data)
    cases = []
    for cut in sorted({0, 1, 7, 8, 40, 63, 64, 100, 223, 224, 300, n // 3, n // 2, n - 64, n - 1}):
        if 0 <= cut < n:
            cases.append(("truncated to %d bytes" % cut, data[:cut]))
    cases.append(("one extra byte", data + b"\0"))
    positions = {0, 7, 8, 12, 16, 24, 28, 32, 40, 63, 64, 72, 80, 88, 100, 200, 230, n - 1}
    positions |= {n * k // 40 for k in range(40)}
    # The first, middle and last byte of every section (the table: docs/artifact.md).
    count = int.from_bytes(data[24:28], "little") if n >= 28 else 0
    for i in range(min(count, 6)):
        entry = data[64 + 32 * i: 96 + 32 * i]
        if len(entry) == 32:
            off, size = int.from_bytes(entry[8:16], "little"), int.from_bytes(entry[16:24], "little")
            if size:
                positions |= {off, off + size // 2, off + size - 1}
    for pos in sorted(positions):
        if 0 <= pos < n:
            b = bytearray(data)
            b[pos] ^= 0x5A
            cases.append(("byte %d flipped" % pos, bytes(b)))
    bad = 0
    for i, (what, blob) in enumerate(cases):
        path = os.path.join(work, "m%d.tsl" % i)
        with open(path, "wb") as f:
            f.write(blob)
        try:
            r = subprocess.run([tessel, "inspect", path], capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            print("NOT REJECTED (hang): %s" % what)
            bad += 1
            continue
        err = r.stderr.strip().splitlines()
        ok = r.returncode == 1 and len(err) == 1 and err[0].startswith("error: " + path + ": ")
        if not ok:
            bad += 1
            print("NOT REJECTED: %s: exit %d, stderr %r" % (what, r.returncode, r.stderr[-300:]))
        else:
            print("%s: %s" % (what, err[0][len("error: " + path + ": "):]))
    print("mutations: %d rejected, %d not rejected" % (len(cases) - bad, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
