#!/usr/bin/env bash
# Continue the emoji StyleGAN2 (`stylegan2:emoji-64`, issue 15) on a lent GPU for MINUTES,
# export it, and measure it, bringing everything back through $OUT: one prepared call.
#
# Prepare here, once per session (the device reaches no network; ../shared does not travel):
#   mkdir -p .carry && cp -r ../shared/data/emoji/noto64 ../shared/data/emoji/labels.csv .carry/
#   cp runs/emoji-cnn-judge/emoji-cnn.pt .carry/judge.pt   # the independent judge, if you have it
#   python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl pydantic==X \
#       pydantic-core==Y annotated-types==Z typing-inspection==W typing-extensions==V
#   (the versions of this venv's: pydantic is the one dependency the GAN needs that the
#   device's image lacks). Then, with the `device` tool (about 4 minutes of GAN training,
#   10 in all with the start, the install and the report; the tracked tree (45 MB), the data
#   (17 MB), the judge and the wheels (4 MB) are about 63 of the 64 MiB that travel, so no
#   other state than the committed one fits):
#   run(command="bash benchmarks/emoji_gan_gpu.sh", carry=[".carry", ".whl"], timeout_s=600)
# A CPU dry run of every step, here: DEVICE=cpu MINUTES=0.05 SAMPLES=64 OUT=/tmp/x \
#   PYTHON=.venv/bin/python bash benchmarks/emoji_gan_gpu.sh
set -euo pipefail
OUT=${OUT:-runs/emoji-gan-gpu}
DEVICE=${DEVICE:-cuda}
MINUTES=${MINUTES:-4}
BATCH=${BATCH:-64}
DATA=${DATA:-.carry}
STATE=${STATE:-examples/emoji-gan-state/state.pt}
PYTHON=${PYTHON:-python3}
WORK=${WORK:-/tmp/emoji-gan-gpu}
SAMPLES=${SAMPLES:-2000}

if [ -d .whl ] && ! "$PYTHON" -c "import pydantic" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! "$PYTHON" -c "import ganenc, ganenc_stylegan" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site \
        . plugins/stylegan
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

# WORK may be the user's: only this script's own folders in it are replaced (marked by it)
MARK=.ganenc-emoji-gan-gpu
if [ -e "$WORK" ] && [ ! -e "$WORK/$MARK" ] && { [ ! -d "$WORK" ] || [ -n "$(ls -A "$WORK")" ]; }; then
    echo "error: WORK=$WORK holds files this script did not write; give a new or empty WORK (nothing was deleted)" >&2
    exit 2
fi
rm -rf "$WORK/run" "$WORK/report" "$WORK/judge" && mkdir -p "$WORK/run" "$OUT"
touch "$WORK/$MARK"
cp "$STATE" "$WORK/run/state.pt"
"$PYTHON" examples/train_emoji_gan.py --data "$DATA" --out "$WORK/run" --device "$DEVICE" \
    --batch-size "$BATCH" --ema-kimg 10 --minutes "$MINUTES" --sample-every 1000 \
    --save-every 1000
step=$("$PYTHON" -c "import torch, sys; print(torch.load(sys.argv[1], weights_only=True)['step'])" \
    "$WORK/run/state.pt")
"$PYTHON" examples/emoji_gan_report.py --data "$DATA" --checkpoint "$WORK/run/stylegan2-emoji-64.pt" \
    --out "$WORK/report" --samples "$SAMPLES" --force
judge=()
[ -f "$DATA/judge.pt" ] && judge=(--feature-weights "$DATA/judge.pt")
"$PYTHON" examples/emoji_gan_report.py --data "$DATA" --out "$WORK/judge" --samples "$SAMPLES" \
    --force "${judge[@]}" \
    --curve "$step=$WORK/run/stylegan2-emoji-64.pt" --curve-seeds 3

# $OUT brings back 8 files of at most 16 MiB: the state (generator, EMA, discriminator, Adam) in
# 15 MiB parts (join them with cat), the export, the report's numbers and its group figure.
split -b 15M -d "$WORK/run/state.pt" "$OUT/state.pt.part"
cp "$WORK/run/stylegan2-emoji-64.pt" "$OUT/stylegan2-emoji-64-step$step.pt"
cp "$WORK/report/report.json" "$OUT/report.json"
cp "$WORK/report/samples-by-group.png" "$OUT/samples-by-group.png"
cp "$WORK/judge/curve.json" "$OUT/judge-curve.json" 2>/dev/null || true
ls -la "$OUT"
echo "emoji GAN on $DEVICE: step $step; the state's parts join with: cat state.pt.part* > state.pt"
