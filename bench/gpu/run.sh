#!/usr/bin/env bash
# The GPU check, in one command, on a bare GPU machine with CUDA torch and no internet:
#
#   bash bench/gpu/run.sh        # first, where PyPI is reachable: bench/gpu/fetch_wheels.sh
#
# Within BUDGET_S (default 480 s) in all, each stage under `timeout` (a hang costs at most its
# share, later stages are skipped when the time is gone):
#   install   the wheels of bench/gpu/wheels whose distribution is not installed (pip --no-index
#             --no-deps --target, then on PYTHONPATH); `pip install --no-deps -e .` unless
#             promptreel is installed (it also runs from PYTHONPATH, as `python -m pipeline`)
#   timing    bench.timing_model: Wan 2.1 1.3B + Wan VAE at 832x480x81, bf16, default attention;
#   probe     every exact attention backend diffusers can dispatch to here, timed;
#   backend   the 1.3B step again with the fastest one (when it is not the default);
#   families  every tiny family end to end on CUDA in bf16, twice, pixels compared: two
#             `promptreel render --format png` runs when Ray and an ffmpeg are there, else
#             promptreel's planner + Renderer in-process (bench/gpu/tiny_families.py);
#   lanes     the speed lanes on the tiny families (bench/lanes.py: attention kernels, step
#             caches; seconds per item and pixels vs the exact lane), 12 steps, batch 1;
#   compile   the 1.3B step with regional torch.compile, if at least 150 s are left.
# Result: ONE JSON, $OUT/gpu.json when OUT is set, else bench/results/gpu.json; each stage's
# log in $OUT/gpu-logs/, else bench/gpu/logs/. Exit 0 when every stage that ran exited 0.
# KEEP_WORK=1 keeps the temp dir (tiny checkpoints, both run dirs); PYTHON=... picks the
# interpreter (default python3).
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
PY=${PYTHON:-python3}
BUDGET=${BUDGET_S:-480}
DEST=${OUT:-$REPO/bench/results}
LOGS=${OUT:+$OUT/gpu-logs}
LOGS=${LOGS:-$REPO/bench/gpu/logs}  # git-ignored (bench/gpu/.gitignore)
WORK=$(mktemp -d /tmp/promptreel-gpu.XXXXXX)
# For a dry run of this script on a CPU: DEVICE=cpu DTYPE=float32 GPUS=0 SHAPE=16x16x5
# TIMING_ARGS="--reduced --repeats 1" (the timing stages then say reduced in their JSON).
DEVICE=${DEVICE:-cuda} DTYPE=${DTYPE:-bfloat16} GPUS=${GPUS:-1} SHAPE=${SHAPE:-832x480x81}
export PY WORK DEVICE DTYPE GPUS SHAPE TIMING_ARGS=${TIMING_ARGS:-}
mkdir -p "$LOGS"
export PYTHONPATH=$WORK/site:$REPO${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export PROMPTREEL_HOME=$WORK/models HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export RAY_USAGE_STATS_ENABLED=0 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
: >"$WORK/stages.jsonl"

# stage NAME CAP_S CMD...: CMD (a program or an exported function) under timeout
# min(CAP_S, time left - 15 s), its output in its log.
stage() {
    local name=$1 cap=$2 start=$SECONDS rc limit
    shift 2
    limit=$((BUDGET - SECONDS - 15))
    ((limit > cap)) && limit=$cap
    if ((limit < 20)); then
        echo "== $name: skipped, ${limit}s left"
        echo "{\"stage\": \"$name\", \"skipped\": \"out of time\"}" >>"$WORK/stages.jsonl"
        return 124
    fi
    echo "== $name (timeout ${limit}s): $*"
    timeout -k 10 "$limit" bash -c '"$@"' "$name" "$@" >"$LOGS/$name.log" 2>&1
    rc=$?
    tail -n 25 "$LOGS/$name.log"
    echo "{\"stage\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - start)), \"timeout_s\": $limit}" \
        >>"$WORK/stages.jsonl"
    return $rc
}

install_wheels() {
    local missing=""
    if [[ -f bench/gpu/wheels/requirements.txt ]]; then
        missing=$("$PY" - <<'EOF'
import importlib.metadata as md
from pathlib import Path

for line in Path("bench/gpu/wheels/requirements.txt").read_text().split():
    try:
        md.distribution(line.split("==")[0])
    except md.PackageNotFoundError:
        print(line)
EOF
        )
    else
        echo "no bench/gpu/wheels/requirements.txt: run bench/gpu/fetch_wheels.sh first"
    fi
    echo "missing here: ${missing:-nothing}"
    if [[ -n $missing ]]; then
        # shellcheck disable=SC2086  # one requirement per word
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --find-links bench/gpu/wheels --target "$WORK/site" $missing || return 1
    fi
    if ! "$PY" -c "import importlib.metadata as m; m.distribution('promptreel')" 2>/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . \
            || echo "pip install -e . failed (read-only environment?): running from PYTHONPATH"
    fi
    "$PY" -m pip check || true  # what is still missing or at another version, for the record
}

time_model() {
    # shellcheck disable=SC2086  # TIMING_ARGS: words
    "$PY" -m bench.timing_model --device "$DEVICE" --dtype "$DTYPE" --shape "$SHAPE" \
        $TIMING_ARGS "$@"
}

render_families() {
    "$PY" bench/gpu/tiny_families.py manifest "$WORK/families" || return 1
    local render=("$PY" -m pipeline render "$WORK/families/families.parquet" --device "$DEVICE"
        --dtype "$DTYPE" --gpus-per-actor "$GPUS" --format png --no-progress --report-interval 0)
    "${render[@]}" --out "$WORK/run-a" && "${render[@]}" --out "$WORK/run-b" || return 1
    "$PY" bench/gpu/tiny_families.py compare "$WORK/run-a" "$WORK/run-b" --json "$WORK/families.json"
}

export -f install_wheels time_model render_families

can_render() {  # Ray, ffmpeg-python and an ffmpeg binary (imageio-ffmpeg's, else the system's)
    if ! "$PY" -c "import imageio_ffmpeg" 2>/dev/null && command -v ffmpeg >/dev/null; then
        export PROMPTREEL_FFMPEG=$(command -v ffmpeg)
    fi
    "$PY" -c "import ray, ffmpeg; from pipeline.outputs.encode import ffmpeg_exe; ffmpeg_exe()"
}

command -v nvidia-smi >/dev/null && nvidia-smi -L
stage install 120 install_wheels
stage timing 150 time_model --models wan-1.3b wan-vae --json "$WORK/timing.json"
stage probe 60 time_model --models wan-1.3b --probe-attention --json "$WORK/attention.json"
fastest=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['attention_probe']
['fastest_exact'] or '')" "$WORK/attention.json" 2>/dev/null)
if [[ -n $fastest && $fastest != native ]]; then
    stage backend 90 time_model --models wan-1.3b --attention-backend "$fastest" \
        --json "$WORK/timing-$fastest.json"
fi
if can_render >"$LOGS/can_render.log" 2>&1; then
    stage families 240 render_families
else
    echo "no Ray or no ffmpeg here ($LOGS/can_render.log): the in-process families check"
    stage families 180 "$PY" bench/gpu/tiny_families.py direct "$WORK/families" \
        --device "$DEVICE" --dtype "$DTYPE" --json "$WORK/families.json"
fi
stage lanes 90 "$PY" -m bench.lanes --device "$DEVICE" --dtype "$DTYPE" --json "$WORK/lanes.json"
if ((BUDGET - SECONDS >= 150)); then
    backend=()
    [[ -n $fastest && $fastest != native ]] && backend=(--attention-backend "$fastest")
    stage compile 240 time_model --models wan-1.3b --compile "${backend[@]}" \
        --json "$WORK/timing-compile.json"
fi

"$PY" - "$WORK" "$DEST/gpu.json" "$SECONDS" <<'EOF'
import json, shutil, subprocess, sys
from pathlib import Path

work, dest, seconds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])


def read(name):
    path = work / name
    return json.loads(path.read_text()) if path.is_file() else None


stages = [json.loads(line) for line in (work / "stages.jsonl").read_text().splitlines()]
smi = shutil.which("nvidia-smi")
smi = subprocess.run([smi, "-L"], capture_output=True, text=True).stdout.strip() if smi else None
result = dict(
    gpu=smi, seconds=seconds, stages=stages,
    timing=[read(p.name) for p in sorted(work.glob("timing*.json"))],
    attention=read("attention.json"), families=read("families.json"), lanes=read("lanes.json"),
    ok=all(s.get("rc") == 0 for s in stages if "rc" in s),
)
dest.write_text(json.dumps(result, indent=2, default=str) + "\n")
print(f"wrote {dest} ({seconds} s in all): ok={result['ok']}")
for s in stages:
    print(" ", s)
sys.exit(0 if result["ok"] else 1)
EOF
rc=$?
[[ -n ${KEEP_WORK:-} ]] && echo "kept $WORK" || rm -rf "$WORK"
exit $rc
