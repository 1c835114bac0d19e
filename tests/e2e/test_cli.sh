#!/usr/bin/env bash
# The command line of DESIGN.md: --help, --version, unknown flags (exit 2,
# one line), a bad port, a data dir that cannot be created, a port in use.
source "$(dirname "$0")/lib.sh"

CP=$PC_BIN_DIR/portcullisd
DP=$PC_BIN_DIR/portcullis-proxy

for bin in "$CP" "$DP"; do
  name=$(basename "$bin")
  "$bin" --help | grep -- '--log-level' >/dev/null || pc_fail "$name --help lacks --log-level"
  "$bin" --version | grep -Eq "^$name [0-9]+\.[0-9]+\.[0-9]+$" || pc_fail "$name --version"

  rc=0; out=$("$bin" --no-such-flag 2>&1) || rc=$?
  pc_assert_eq "$rc" 2 "$name unknown flag exit status"
  pc_assert_eq "$(printf '%s\n' "$out" | wc -l)" 1 "$name unknown flag: one line"
  [[ "$out" == *no-such-flag* ]] || pc_fail "$name unknown flag message does not name it: $out"

  rc=0; out=$("$bin" --log-level 2>&1) || rc=$?
  pc_assert_eq "$rc" 2 "$name flag without value"
  rc=0; out=$("$bin" --log-level shouty 2>&1) || rc=$?
  pc_assert_eq "$rc" 2 "$name bad log level"
  rc=0; out=$("$bin" stray 2>&1) || rc=$?
  pc_assert_eq "$rc" 2 "$name stray argument"
done

rc=0; "$DP" --workers 0 2>/dev/null || rc=$?
pc_assert_eq "$rc" 2 "proxy --workers 0"
rc=0; "$DP" --workers abc 2>/dev/null || rc=$?
pc_assert_eq "$rc" 2 "proxy --workers abc"

# Bad API addresses.
for bad in 127.0.0.1:70000 127.0.0.1:-1 nohost 127.0.0.1:http; do
  rc=0; out=$("$CP" --data-dir "$PC_TMP/d1" --api-listen "$bad" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || pc_fail "--api-listen $bad accepted"
  pc_assert_eq "$(printf '%s\n' "$out" | wc -l)" 1 "--api-listen $bad: one line"
done

# A data dir that cannot be created (its parent is a file).
touch "$PC_TMP/file"
rc=0; out=$("$CP" --data-dir "$PC_TMP/file/var" --api-listen 127.0.0.1:0 2>&1) || rc=$?
[ "$rc" -ne 0 ] || pc_fail "unusable data dir accepted"
[[ "$out" == *"$PC_TMP/file"* ]] || pc_fail "data dir error does not name the path: $out"
pc_assert_eq "$(printf '%s\n' "$out" | wc -l)" 1 "data dir error: one line"

# A port in use.
pc_start_cp
port=${PC_API##*:}
rc=0; out=$(timeout 10 "$CP" --data-dir "$PC_TMP/d2" --api-listen "127.0.0.1:$port" 2>&1) || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || pc_fail "second portcullisd on a taken port: rc=$rc"
[[ "$out" == *"in use"* ]] || pc_fail "port-in-use message unclear: $out"

# The data dir is private.
mode=$(stat -c %a "$PC_DATA")
pc_assert_eq "$mode" 700 "data dir mode"
pc_pass
