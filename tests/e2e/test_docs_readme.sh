#!/usr/bin/env bash
# api-docs/README.md, checked without a daemon: every runnable ```sh example
# is followed by its ```http response; every operation of openapi.yaml has
# an example answering 2xx and every error status (400 401 404 405 409 413
# 415 422) one too; every documented response body matches openapi.yaml;
# examples use only $API, $TOKEN, $CERTS (tests/docs/openapi-check.mjs readme).
# test_docs_examples.sh runs the same examples against the real daemon.
# pc-timeout: 400
source "$(dirname "$0")/lib.sh"

docs=$PC_SRC_DIR/tests/docs
"$docs/install.sh" || pc_fail "cannot install the docs tooling (tests/docs)"
out=$(node "$docs/openapi-check.mjs" readme "$PC_SRC_DIR/api-docs/openapi.yaml" \
  "$PC_SRC_DIR/api-docs/README.md" 2>&1) || pc_fail "README.md: $out"
pc_log "$out"

# The check must bite: a documented response that contradicts the spec.
sed -e '0,/"key_bits": 256,/s//"key_bits": "256",/' "$PC_SRC_DIR/api-docs/README.md" >"$PC_TMP/bad.md"
if node "$docs/openapi-check.mjs" readme "$PC_SRC_DIR/api-docs/openapi.yaml" "$PC_TMP/bad.md" \
  >/dev/null 2>&1; then
  pc_fail "a README response contradicting the spec was accepted"
fi
pc_pass
