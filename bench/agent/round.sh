#!/usr/bin/env bash
# One round of LLM-driven searches on the demo ops through reply queues, on a GPU host.
#
# Each op's search judges the replies that came in since the last round, folds them, writes the
# next generation's prompts to bench/agent/state/<op>/prompts and stops (exit 75) to wait for
# replies; a search that reached a stop rule exits 0. The ops' searches run side by side (the
# judges' GPU locks are per machine, so no kernel runs while another is timed); LIMIT seconds cap
# each one, and a search cut there resumes from its state file next round. Run from the repo root
# with kevolve installed; the state folder is what carries a search from one round to the next.
set -u
STATE=${STATE:-bench/agent/state}
OPS=${OPS:-"softmax bias_gelu matmul_bias_relu"}
mkdir -p "$STATE"
for op in $OPS; do
    (
        start=$(date +%s)
        timeout --signal=INT --kill-after=20 "${LIMIT:-400}" \
            kevolve optimize examples/demo --op "$op" --device cuda \
            --llm-queue "$STATE/$op" --state "$STATE/$op.sqlite" --llm-model "${MODEL:-helper-subagent}" \
            --llm-share 1 --per-generation "${PER_GENERATION:-6}" --parallel "${PARALLEL:-4}" \
            --budget "${BUDGET:-60}" --patience "${PATIENCE:-8}" --repairs 2 --timeout 120 \
            --out "$STATE/$op.json" --json >"$STATE/$op.out" 2>"$STATE/$op.err"
        code=$?
        echo "$op: exit $code in $(($(date +%s) - start)) s: $(tail -n 1 "$STATE/$op.err")"
    ) &
done
wait
