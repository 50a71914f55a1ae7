#!/usr/bin/env bash
# Download, HERE (where PyPI is reachable), the wheels bench/gpu/run.sh installs offline on a
# bare GPU machine, at exactly the versions installed in .venv:
#
#   bench/gpu/fetch_wheels.sh              # every runtime dependency of promptreel but torch
#   bench/gpu/fetch_wheels.sh --minimal    # only what the GPU check needs and a CUDA image lacks
#
# Full: the dependency closure of pyproject's [project.dependencies] (ray[default] included,
# no dev/s3 extras), read from .venv's installed metadata, without torch and what only torch
# needs (the GPU machine's CUDA torch brings those); pinned to .venv's versions (= pip freeze).
# Minimal (a few MiB: fits the 64 MiB a device-tool call carries): what the timing model and
# the in-process families check import that this workplace's GPU image lacked when last listed
# (/work/.library/device/KINDS.md, 2026-11-17: it has torch, transformers, tokenizers,
# accelerate, huggingface-hub, safetensors, numpy, pandas, pyarrow, psutil, pillow, requests,
# pyyaml, regex, tqdm, fsspec, ...): diffusers, importlib-metadata, ftfy, ffmpeg-python, torchao and
# their missing needs. Not ray (75.6 MiB as a cp312 wheel) nor imageio-ffmpeg (64.8 MiB: a
# static ffmpeg), each over 64 MiB alone: without them run.sh checks the families through
# promptreel's Renderer in-process instead of `promptreel render` (bench/gpu/tiny_families.py).
# run.sh installs only what is not installed there and prints `pip check` for the rest.
#
# pip download flags: --no-deps (the list above is already the closure); --only-binary=:all:
# (nothing may need a compiler there); --python-version / --implementation cp / --abi: the GPU
# machine's interpreter, not this one (python3 there is 3.12, KINDS.md; PYVER=3.11 to change);
# --platform: pip matches manylinux tags exactly, so each glibc level is listed, up to 2.35
# (Ubuntu 22.04; wheels for a newer glibc would not load there).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
DEST=bench/gpu/wheels
PYVER=${PYVER:-3.12}
MODE=full
[[ ${1:-} == --minimal ]] && MODE=minimal
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n 2,6p "$0"; exit 0; }

requirements=$("$PY" - "$MODE" <<'EOF'
import importlib.metadata as md
import sys

from packaging.requirements import Requirement

MINIMAL = ["diffusers", "importlib-metadata", "zipp", "ftfy", "wcwidth", "ffmpeg-python",
           "future", "torchao"]  # torchao: the --quantize lane (bench/lanes.py)


def key(name):
    return name.lower().replace("_", "-")


def closure(roots):
    """name -> (version, extras) over installed metadata, not descending into torch."""
    seen, stack = {}, list(roots)
    while stack:
        req = stack.pop()
        if key(req.name) == "torch":
            continue
        dist = md.distribution(req.name)
        name = key(dist.metadata["Name"])
        old = seen.get(name, (None, set()))[1]
        if name in seen and set(req.extras) <= old:
            continue
        extras = old | set(req.extras)
        seen[name] = (dist.version, extras)
        for text in dist.requires or []:
            r = Requirement(text)
            if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in extras or {""}):
                stack.append(r)
    return seen


roots = [Requirement(t) for t in md.requires("promptreel")]
roots = [r for r in roots if r.marker is None or r.marker.evaluate({"extra": ""})]
found = closure(roots)
names = sorted(found) if sys.argv[1] == "full" else MINIMAL
# The minimal set may name extras' packages (torchao): their installed version.
print("\n".join(f"{n}=={found.get(key(n), (md.version(n),))[0]}" for n in names))
EOF
)

mkdir -p "$DEST"
rm -f "$DEST"/*.whl
echo "$requirements" >"$DEST/requirements.txt"
platforms=()
for glibc in 2014 1 2_17 2_24 2_27 2_28 2_31 2_34 2_35; do
    [[ $glibc == 1 || $glibc == 2014 ]] && platforms+=(--platform "manylinux${glibc}_x86_64") \
        || platforms+=(--platform "manylinux_${glibc}_x86_64")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
    --implementation cp --abi "cp${PYVER/./}" --abi abi3 --abi none "${platforms[@]}" \
    -d "$DEST" -r "$DEST/requirements.txt" 2> >(grep -v "is neither a file nor a dir" >&2)

echo "$MODE set for CPython $PYVER: $(wc -l <"$DEST/requirements.txt") packages in $DEST"
du -b "$DEST"/*.whl | sort -rn | head -5 | awk '{printf "  %6.1f MiB  %s\n", $1 / 2^20, $2}'
total=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
awk -v t="$total" 'BEGIN { printf "total %.1f MiB (the device tool carries at most 64 MiB)\n", t / 2^20 }'
