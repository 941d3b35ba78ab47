"""Finish a venv built by dh_virtualenv so that it is byte-identical in any
build path and every script starts with a shebang into the venv.

Usage: python3 finish-venv.py BUILT_VENV FINAL_PATH
Shipped by venvdeb in debian/venvdeb/; run by debian/rules.
"""
import base64
import hashlib
import os
import shutil
import sys

built, final = sys.argv[1], sys.argv[2]
bin_dir = os.path.join(built, "bin")
venv_python = final.encode() + b"/bin/python"

# 1. Every script of bin/ starts with "#!FINAL/bin/python". pip writes a
#    /bin/sh trampoline instead of a shebang when the build path is long, and
#    a plain "#!.../python3" when it is short (sbuild); dh_virtualenv only
#    rewrote the path. One form for both, so that any build path gives the
#    same bytes (and lintian does not take ".../python3" for a misplaced
#    /usr/bin/python3).
for name in sorted(os.listdir(bin_dir)):
    path = os.path.join(bin_dir, name)
    if os.path.islink(path) or not os.path.isfile(path):
        continue
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    if len(lines) > 3 and lines[0] == b"#!/bin/sh" \
            and lines[1].startswith(b"'''exec' " + venv_python) and lines[2] == b"' '''":
        first, body = venv_python, lines[3:]
    elif lines[0].startswith(b"#!" + venv_python):
        args = lines[0][2:].split(b" ", 1)[1:]  # keep interpreter options, if any
        first, body = b" ".join([venv_python, *args]), lines[1:]
    else:
        continue
    with open(path, "wb") as handle:
        handle.write(b"#!" + first + b"\n" + b"\n".join(body))

# 2. No bytecode from the build (recompiled later for FINAL_PATH), no
#    direct_url.json (it names the build path), no uv_cache.json (uv's note of
#    when it built the project from its source tree).
BUILD_NOTES = ("direct_url.json", "uv_cache.json")
for root, dirs, files in os.walk(built):
    if "__pycache__" in dirs:
        shutil.rmtree(os.path.join(root, "__pycache__"))
        dirs.remove("__pycache__")
    if root.endswith(".dist-info"):
        for note in BUILD_NOTES:
            if note in files:
                os.unlink(os.path.join(root, note))


# 3. RECORD: the hashes of rewritten scripts, without the build notes, sorted.
def record_hash(path):
    with open(path, "rb") as handle:
        data = handle.read()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}", str(len(data))


site = [os.path.join(built, "lib", d, "site-packages") for d in os.listdir(os.path.join(built, "lib"))]
for packages in site:
    for entry in sorted(os.listdir(packages)):
        record = os.path.join(packages, entry, "RECORD")
        if not entry.endswith(".dist-info") or not os.path.exists(record):
            continue
        out = []
        with open(record, encoding="utf-8") as handle:
            for line in handle.read().splitlines():
                path = line.rsplit(",", 2)[0]
                if path.rsplit("/", 1)[-1] in BUILD_NOTES and ".dist-info/" in path:
                    continue
                target = os.path.normpath(os.path.join(packages, path))
                if target.startswith(bin_dir + os.sep) and os.path.isfile(target) \
                        and not os.path.islink(target):
                    line = ",".join((path, *record_hash(target)))
                out.append(line)
        with open(record, "w", encoding="utf-8") as handle:
            handle.write("\n".join(sorted(out)) + "\n")

# 4. pyvenv.cfg records the command that made the venv, with the build path.
cfg = os.path.join(built, "pyvenv.cfg")
with open(cfg, encoding="utf-8") as handle:
    text = handle.read()
with open(cfg, "w", encoding="utf-8") as handle:
    handle.write(text.replace(os.path.abspath(built), final))
