#!/usr/bin/env bash
# The main job on the built-in synthetic faces, on a fresh machine: set up, train a small GANimation for a few
# minutes, export it, and edit a held-out face into eight expressions.
#
# The problem is made small so that a 2-core CPU sees enough images in minutes (docs/learning.md): 32 x 32 faces,
# a generator of width 16 with 2 residual blocks, a 5-layer critic, 3,120 critic steps of 16 faces (50k images),
# `--precision auto` (bf16 only on a CPU that runs it natively, AVX-512 BF16 / AMX, else fp32), and the options
# that got furthest in the experiments: the attention warm-up with --lambda-att 0.01, the AU-weight warm-up, a
# moving average of the generator (--g-ema), and a color mask that is a change of the input (--g-color-residual). --max-minutes 7 caps the training on a slow host; the run stops
# with an evaluation and an export either way. Its last "step N:" line is the ground-truth evaluation on
# held-out identities (single_gain_mean > 0 would mean better than copying the input; see docs/learning.md for
# what it reaches).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install -q -r requirements.txt
.venv/bin/python train.py --image-size 32 --g-conv-dim 16 --d-conv-dim 16 --n-res 2 --d-layers 5 \
    --precision auto --batch 16 --epochs 10 --decay-epochs 0 --lr-g 5e-4 --lr-d 5e-4 --critic-steps 2 \
    --lambda-cond 160 --lambda-cond-start 800 --cond-warmup-steps 3000 \
    --lambda-att 0.01 --att-warmup-steps 1000 --lambda-att-start 10 --g-ema 0.999 --g-color-residual \
    --synthetic-identities 200 --synthetic-per-identity 25 --eval-every 1000 --eval-identities 4 \
    --sample-every 500 --max-minutes 7 --run-name "quickstart-$(date +%Y%m%d-%H%M%S)" | tee .quickstart-run
run_dir=$(tail -n 1 .quickstart-run) && rm .quickstart-run
.venv/bin/python -m data.synthetic --identity 1000003 --size 32 --out out/face.png
.venv/bin/python infer.py --src out/face.png --aus examples/expressions.csv --model "$run_dir" --out out --save-attention
echo "Open out/*.png (edits) and $run_dir/samples/*.png (training grids); TensorBoard: tensorboard --logdir $run_dir/tb"
