#!/usr/bin/env bash
# The main job on the built-in synthetic faces, on a fresh machine: set up, train a small GANimation for a few
# minutes, export it, and edit a held-out face into eight expressions. About 6-8 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install -q -r requirements.txt
.venv/bin/python train.py --image-size 64 --g-conv-dim 32 --d-conv-dim 32 --n-res 4 --batch 16 --epochs 5 \
    --sample-every 125 --run-name "quickstart-$(date +%Y%m%d-%H%M%S)" | tee .quickstart-run
run_dir=$(tail -n 1 .quickstart-run) && rm .quickstart-run
.venv/bin/python -m data.synthetic --identity 1000003 --size 64 --out out/face.png
.venv/bin/python infer.py --src out/face.png --aus examples/expressions.csv --model "$run_dir" --out out --save-attention
echo "Open out/*.png (edits) and $run_dir/samples/*.png (training grids); TensorBoard: tensorboard --logdir $run_dir/tb"
