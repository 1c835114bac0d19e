#!/usr/bin/env bash
# Reads never wait behind mutations. A fake proxy completes its hello but
# never ACKs; 10 concurrent mutations follow, and meanwhile GET /v1/status,
# GET /v1/listeners and /healthz answer at once (asserted < 2 s, the hung
# proxy holds the first mutation for the whole ack timeout). Every mutation
# gets its normal answer (applied:false) or 503 "busy" with Retry-After,
# within its bound, never a 500. Then a slow proxy (each ACK after 1.8 s)
# makes the queue of mutations outlast the ack timeout: the late ones are
# refused with 503 busy while the first ones are applied.
# pc-timeout: 120
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_api.sh"

ACK_MS=5000
export PORTCULLIS_ACK_TIMEOUT_MS=$ACK_MS
pc_start_cp
export PC_API PC_TOKEN PC_TMP

# mutations PREFIX: start 10 concurrent POST /v1/target-groups named
# PREFIX1..PREFIX10; each writes "CODE SECONDS" to $PC_TMP/PREFIXi.code, its
# headers and body next to it, and the time it ended to .end.
MPIDS=()
mutations() {
  local i
  MPIDS=()
  for i in $(seq 10); do
    pc_spawn "$PC_TMP/$1$i.log" bash -c '
      curl -sS -o "$PC_TMP/$0.body" -D "$PC_TMP/$0.hdr" -w "%{http_code} %{time_total}" \
        --max-time 40 -X POST -H "Authorization: Bearer $PC_TOKEN" \
        -H "Content-Type: application/json" --data-binary "{\"name\":\"$0\",\"protocol\":\"tcp\"}" \
        "$PC_API/v1/target-groups" >"$PC_TMP/$0.code" || echo "000 0" >"$PC_TMP/$0.code"
      date +%s.%N >"$PC_TMP/$0.end"' "$1$i"
    MPIDS+=("$PC_LAST_PID")
  done
}

# reads PREFIX: GET /v1/status, /v1/listeners and /healthz in rounds until
# one of the mutations PREFIX* answered (at most 100 rounds); each must
# answer 200 within 2 s. Sets ROUNDS to the rounds completed before any
# mutation answered.
reads() {
  local i path out pending
  ROUNDS=0
  for i in $(seq 100); do
    for path in /v1/status /v1/listeners /healthz; do
      out=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 \
        -H "Authorization: Bearer $PC_TOKEN" "$PC_API$path" || echo "000 10")
      [ "${out% *}" = 200 ] || pc_fail "GET $path during mutations: $out"
      awk -v t="${out#* }" 'BEGIN { exit !(t < 2.0) }' \
        || pc_fail "GET $path waited behind the mutations: ${out#* } s"
    done
    pending=1
    compgen -G "$PC_TMP/$1*.end" >/dev/null && pending=0
    [ $pending = 1 ] || break
    ROUNDS=$((ROUNDS + 1))
    sleep 0.1
  done
}

# check PREFIX: every mutation ended within its bound (queue wait + ack
# timeout, with slack) with 201 or 503 busy + Retry-After; sets T, F, B to
# the counts of applied:true, applied:false and busy answers.
check() {
  local i code secs pid t=0 f=0 b=0
  for pid in "${MPIDS[@]}"; do
    pc_wait_exit "$pid" 45
    [ "$PC_RC" != timeout ] || pc_fail "a mutation hung"
  done
  for i in $(seq 10); do
    read -r code secs <"$PC_TMP/$1$i.code" || true
    awk -v t="$secs" -v b="$((3 * ACK_MS / 1000))" 'BEGIN { exit !(t < b) }' \
      || pc_fail "$1$i answered after $secs s"
    case $code in
    201)
      if jq -e '.applied' "$PC_TMP/$1$i.body" >/dev/null; then t=$((t + 1)); else f=$((f + 1)); fi ;;
    503)
      [ "$(jq -r .error.code "$PC_TMP/$1$i.body")" = busy ] \
        || pc_fail "$1$i: 503 but not busy: $(cat "$PC_TMP/$1$i.body")"
      grep -qi '^Retry-After: [0-9]' "$PC_TMP/$1$i.hdr" || pc_fail "$1$i: busy without Retry-After"
      b=$((b + 1)) ;;
    *) pc_fail "$1$i: HTTP $code: $(cat "$PC_TMP/$1$i.body" 2>/dev/null)" ;;
    esac
  done
  T=$t F=$f B=$b
}

# --- a hung proxy: connected, never ACKs. The reads start once the first
# mutation's snapshot reached it (that mutation then waits the whole ack
# timeout, the others queue behind it).
pc_fake_proxy hung never
mutations h
pc_wait_frames hung 'any(.type == "snapshot" and .version == 1)' || pc_fail "no mutation reached the hung proxy"
reads h
check h
pc_log "hung proxy: $ROUNDS rounds of reads while the first mutation waited; applied $T, not applied $F, busy $B"
[ "$ROUNDS" -ge 1 ] || pc_fail "no read answered while the first mutation waited for the hung proxy"
pc_assert_eq "$T" 0 "mutations applied with a hung proxy"
HUNG=$(for i in $(seq 10); do
  if jq -e '.not_applied == ["hung"] and .config_version == 1' "$PC_TMP/h$i.body" >/dev/null 2>&1; then
    echo "h$i"
  fi
done)
[ "$(echo "$HUNG" | grep -c .)" = 1 ] || pc_fail "want one first mutation waiting for the hung proxy, got '$HUNG'"
# Rows: exactly the 201s.
pc_api GET /v1/target-groups
pc_expect_status 200
pc_assert_eq "$(pc_json '[.target_groups[] | select(.name | startswith("h"))] | length')" "$F" "rows of hung-phase mutations"

# --- a slow proxy: ACKs each snapshot after 1.8 s, so 10 queued mutations
# outlast the ack timeout; the late ones are refused with 503 busy.
pc_fake_proxy slow ack --ack-delay-ms 1800
sleep 2 # its ack of the snapshot it got on connecting
mutations s
reads s
check s
pc_log "slow proxy: applied $T, not applied $F, busy $B"
[ "$T" -ge 1 ] || pc_fail "no mutation applied through the slow proxy"
[ "$B" -ge 1 ] || pc_fail "no mutation refused busy although the queue outlasted the ack timeout"
pc_api GET /v1/target-groups
pc_expect_status 200
pc_assert_eq "$(pc_json '[.target_groups[] | select(.name | startswith("s"))] | length')" "$((T + F))" "rows of slow-phase mutations"

# After the storm a mutation goes through normally.
pc_api POST /v1/target-groups '{"name":"after","protocol":"tcp"}'
pc_expect_status 201
pc_assert_eq "$(pc_json .applied)" true "applied after the storm"
kill -0 "$PC_CP_PID" || pc_fail "portcullisd died"
pc_stop "$PC_CP_PID"
pc_assert_eq "$PC_RC" 0 "portcullisd exit status"
pc_pass
