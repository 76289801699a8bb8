#!/usr/bin/env bash
# The same searches as ../round.sh, judged on CPU (Triton's interpreter: correctness only,
# nothing timed) where no GPU is at hand: it exercises the loop (replies, repairs, lineage).
set -u
here=$(cd "$(dirname "$0")" && pwd)
for op in ${OPS:-softmax bias_gelu matmul_bias_relu}; do
    kevolve optimize "$here/../../../examples/demo" --op "$op" --device cpu \
        --llm-queue "$here/$op" --state "$here/$op.sqlite" --llm-model helper-subagent \
        --llm-share 1 --per-generation 6 --parallel 3 --budget 60 --patience 8 --repairs 2 \
        --timeout 120 --out "$here/$op.json" --json >"$here/$op.out" 2>"$here/$op.err" &
done
wait
for op in ${OPS:-softmax bias_gelu matmul_bias_relu}; do echo "$op: $(tail -n 1 "$here/$op.err")"; done
