#!/usr/bin/env bash
# api-docs/openapi.yaml is valid OpenAPI 3.1 (official JSON Schema, via the
# pinned @seriousme/openapi-schema-validator), every $ref resolves, and it
# follows the project's rules (every DESIGN.md route, bearer auth on /v1/*,
# Error schema on every error, closed request bodies, valid examples): see
# tests/docs/openapi-check.mjs. A broken copy of the spec must be refused,
# so the check is known to bite.
# pc-timeout: 400
source "$(dirname "$0")/lib.sh"

docs=$PC_SRC_DIR/tests/docs
spec=$PC_SRC_DIR/api-docs/openapi.yaml
"$docs/install.sh" || pc_fail "cannot install the validator (tests/docs)"

out=$(node "$docs/openapi-check.mjs" lint "$spec" 2>&1) || pc_fail "openapi.yaml is not valid: $out"
pc_log "$out"

# The validator must refuse broken specs (so a green run means something).
broken() { # NAME SED-EXPRESSION
  sed -e "$2" "$spec" >"$PC_TMP/$1.yaml"
  cmp -s "$spec" "$PC_TMP/$1.yaml" && pc_fail "broken spec '$1': sed changed nothing"
  broken_specs+=("$PC_TMP/$1.yaml")
}
broken_specs=()
broken unknown-top-level '0,/^openapi: /s/^openapi: .*/&\nnot_a_field: 1/'
broken dangling-ref '0,/schemas\/Status"/s/schemas\/Status"/schemas\/NoSuchSchema"/'
broken missing-route 's#^  /v1/status:#  /v1/statusx:#'
broken wrong-version 's/^openapi: 3\.1\.0/openapi: 3.1/; s/^openapi: 3\.1$/openapi: 4.0.0/'
broken bad-schema-type '0,/type: integer/s/type: integer/type: integr/'
broken open-request-body '/^    TargetInput:/,/additionalProperties/{/additionalProperties: false/d}'
broken duplicate-key '0,/^  summary: /s/^  summary: .*/&\n  summary: twice/'
broken error-without-schema '0,/\$ref: "#\/components\/schemas\/Error"/s//$ref: "#\/components\/schemas\/Healthz"/'
out=$(node "$docs/openapi-check.mjs" mustfail "${broken_specs[@]}" 2>&1) || pc_fail "$out"
pc_log "$out"
pc_pass
