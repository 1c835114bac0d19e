#!/usr/bin/env bash
# Rotation through a snapshot_delta with the real proxy: a PUT of a
# certificate reaches the proxy as one certificate frame plus a delta (no
# full snapshot); a rotation that keeps the names is applied in place (the
# certificate slot swapped, no rebuild), the rotated name serves the new
# certificate when the call returns, the other name keeps its own, and the
# listener keeps its socket. A rotation to other names rebuilds from the
# current configuration and serves the new names. A PUT of an unreferenced
# certificate still advances the version. After a proxy restart, the first
# rotation goes by delta again.
# pc-timeout: 120
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/lib_ops.sh"

pc_mkca ca
pc_mkcert a ca "DNS:a.test"
pc_mkcert a2 ca "DNS:a.test"
pc_mkcert a3 ca "DNS:a.test"
pc_mkcert a4 ca "DNS:a.test,DNS:www.a.test"
pc_mkcert b ca "DNS:b.test"
pc_mkcert spare ca "DNS:spare.test"
pc_mkcert spare2 ca "DNS:spare.test"

pc_stack
pc_backend_http origin
pc_upload_cert a; A=$PC_ID
pc_upload_cert b; B=$PC_ID
pc_upload_cert spare; SPARE=$PC_ID
pc_tg origin "$PC_BE_PORT"
port=$(pc_free_port)
pc_tls_listener web "$port" origin "$A" "$B"
pc_wait_applied
fp() { pc_served_fingerprint "127.0.0.1:$port" "$1"; }
[ "$(fp a.test)" = "$(pc_fingerprint "$PC_CERTS/a.crt")" ] || pc_fail "a.test does not serve a"

rotate() { # rotate ID NAME: PUT NAME's body into ID, require applied
  pc_api PUT "/v1/certificates/$1" "$(pc_cert_json "$2" | jq 'del(.name)')"
  pc_expect_status 200
  pc_assert_eq "$(pc_json .applied)" true "rotation to $2 applied"
  V=$(pc_json .config_version)
}

full_before=$(grep -c "snapshot [0-9]* built" "$PC_DP_LOG")
rotate "$A" a2
pc_wait_for 5 grep -q "snapshot_delta $V applied in place on $((V - 1))" "$PC_DP_LOG" \
  || pc_fail "version $V did not arrive as a delta applied in place"
pc_assert_eq "$(grep -c "snapshot [0-9]* built" "$PC_DP_LOG")" "$full_before" "no full snapshot for a rotation"
# The ACK came after every worker served it: the next handshake has it.
pc_assert_eq "$(fp a.test)" "$(pc_fingerprint "$PC_CERTS/a2.crt")" "a.test after the rotation"
pc_assert_eq "$(fp b.test)" "$(pc_fingerprint "$PC_CERTS/b.crt")" "b.test untouched"
pc_assert_eq "$(grep -c "listener .* bound on" "$PC_DP_LOG")" 1 "listener socket kept"

# Names change: the listener's name map is rebuilt, still from a delta.
rotate "$A" a4
pc_wait_for 5 grep -q "snapshot_delta $V built on $((V - 1))" "$PC_DP_LOG" \
  || pc_fail "version $V (new names) was not rebuilt from the delta"
pc_assert_eq "$(grep -c "snapshot [0-9]* built" "$PC_DP_LOG")" "$full_before" "no full snapshot for new names"
pc_assert_eq "$(fp www.a.test)" "$(pc_fingerprint "$PC_CERTS/a4.crt")" "www.a.test after the rotation"
pc_assert_eq "$(fp a.test)" "$(pc_fingerprint "$PC_CERTS/a4.crt")" "a.test after the second rotation"
pc_assert_eq "$(fp b.test)" "$(pc_fingerprint "$PC_CERTS/b.crt")" "b.test untouched again"
# ... and back to one name, in place once more after that.
rotate "$A" a2
pc_wait_for 5 grep -q "snapshot_delta $V built on $((V - 1))" "$PC_DP_LOG" || pc_fail "delta $V not rebuilt"
pc_assert_eq "$(fp www.a.test)" "$(pc_fingerprint "$PC_CERTS/a2.crt")" "www.a.test gone: the default (first) certificate"
pc_assert_eq "$(grep -c "listener .* bound on" "$PC_DP_LOG")" 1 "listener socket kept by rebuilds"

# An unreferenced certificate: an empty delta, the version moves on.
rotate "$SPARE" spare2
pc_wait_applied
pc_wait_for 5 grep -q "snapshot_delta $V applied in place" "$PC_DP_LOG" || pc_fail "empty delta $V not applied"

# A fresh proxy gets a full snapshot first, then deltas again.
pc_stop "$PC_DP_PID"
pc_start_proxy
pc_wait_applied 20
pc_wait_for 10 grep -q "snapshot $V built" "$PC_DP_LOG" || pc_fail "new proxy got no full snapshot $V"
rotate "$A" a3
pc_wait_for 5 grep -q "snapshot_delta $V applied in place on $((V - 1))" "$PC_DP_LOG" \
  || pc_fail "version $V did not arrive as a delta at the new proxy"
pc_assert_eq "$(fp a.test)" "$(pc_fingerprint "$PC_CERTS/a3.crt")" "a.test at the new proxy"
pc_assert_eq "$(fp b.test)" "$(pc_fingerprint "$PC_CERTS/b.crt")" "b.test at the new proxy"
pc_pass
