#!/usr/bin/env bash
# scripts/install.sh on this very host, as root (CI runs it after `deno task test`): an install,
# a second run that changes nothing, the modes and owners it promises, a master key it never
# overwrites, drift it repairs, inputs it refuses, and `sosvault doctor` passing as the service
# account. The installation stays in place afterwards (a usable sosvault, service not started);
# only this test's own temporary files are removed.
#
#   sudo tests/ops/install_test.sh       # SOSVAULT_USER and DENO_DIR are passed to the installer
set -uo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
INSTALL="$REPO/scripts/install.sh"
SVC_USER="${SOSVAULT_USER:-sosvault}"
export SOSVAULT_USER="$SVC_USER"
unset SOSVAULT_BINARY
KEY=/etc/sosvault/master.key
BIN=/usr/local/bin/sosvault

passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'ok   %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/     | /'; }
# check NAME COMMAND…: one assertion.
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }
finish() {
  printf '%s passed, %s failed\n' "$passed" "$failed"
  [ "$failed" -eq 0 ]
  exit
}

if [ "$(id -u)" -ne 0 ]; then
  fail "runs as root" "scripts/install.sh creates a system user and writes /etc: run this test as root"
  finish
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# run_install LABEL [ENV=VALUE…]: runs the installer (from / so no cwd is assumed), keeps its
# output in $TMP/LABEL.out and its exit code in $TMP/LABEL.rc.
run_install() {
  local label=$1; shift
  (cd / && env "$@" "$INSTALL") >"$TMP/$label.out" 2>&1
  echo $? >"$TMP/$label.rc"
}
rc() { cat "$TMP/$1.rc"; }
out() { cat "$TMP/$1.out"; }
# shellcheck disable=SC2317 # called through check
mode_is() { [ "$(stat -c '%a %U %G' "$1" 2>/dev/null)" = "$2" ]; }
key_hash() { sha256sum "$KEY" 2>/dev/null | cut -d' ' -f1; }

# ---- install, then again -----------------------------------------------------------------
key_before="$(key_hash)"
run_install first
if [ "$(rc first)" = 0 ]; then pass "install.sh succeeds"; else fail "install.sh succeeds" "$(out first)"; fi
check "every line of the install says ok, changed or done" \
  bash -c "! grep -Ev '^(ok|changed|done): ' '$TMP/first.out'"
[ -z "$key_before" ] || check "an existing master key is kept" [ "$(key_hash)" = "$key_before" ]

key_first="$(key_hash)"
run_install second
if [ "$(rc second)" = 0 ] && ! grep -q '^changed' "$TMP/second.out"; then
  pass "a second run changes nothing"
else
  fail "a second run changes nothing" "$(grep '^changed' "$TMP/second.out" || out second)"
fi
check "the second run keeps the master key" [ "$(key_hash)" = "$key_first" ]
check "without systemd it says the unit is installed but not started" \
  bash -c "[ -d /run/systemd/system ] || grep -q 'installed but not started' '$TMP/second.out'"

# ---- what is where, with which modes ---------------------------------------------------
check "user $SVC_USER is a system account without a login shell" \
  bash -c "[ \"\$(id -u '$SVC_USER')\" -lt 1000 ] && getent passwd '$SVC_USER' | grep -q ':/usr/sbin/nologin\$'"
check "/etc/sosvault is 750 root:$SVC_USER" mode_is /etc/sosvault "750 root $SVC_USER"
check "the master key is 640 root:$SVC_USER" mode_is "$KEY" "640 root $SVC_USER"
check "the master key holds 32 bytes as base64" grep -Eq '^[A-Za-z0-9+/]{43}=$' "$KEY"
check "the env file is 640 root:$SVC_USER" mode_is /etc/sosvault/sosvault.env "640 root $SVC_USER"
check "/var/lib/sosvault is 700 $SVC_USER" mode_is /var/lib/sosvault "700 $SVC_USER $SVC_USER"
check "the artifact directory is 700 $SVC_USER" \
  mode_is /var/lib/sosvault/artifacts "700 $SVC_USER $SVC_USER"
check "$BIN is 755 root" mode_is "$BIN" "755 root root"
check "sosvault-admin is 755 root" mode_is /usr/local/sbin/sosvault-admin "755 root root"
check "the sudo rules are 440 root" mode_is "/etc/sudoers.d/$SVC_USER" "440 root root"
check "the sudo rules pass visudo" visudo -cqf "/etc/sudoers.d/$SVC_USER"
check "the sudo rules are what doctor prints for $SVC_USER" bash -c \
  "cd / && diff <(runuser -u '$SVC_USER' -- '$BIN' doctor --sudoers --user '$SVC_USER') '/etc/sudoers.d/$SVC_USER'"
check "the sysctl file is 644 root" mode_is /etc/sysctl.d/60-sosvault.conf "644 root root"
check "the link protections are on" \
  bash -c "[ \"\$(sysctl -n fs.protected_symlinks fs.protected_hardlinks | tr '\n' ' ')\" = '1 1 ' ]"
check "the unit is 644 root" mode_is /etc/systemd/system/sosvault.service "644 root root"
check "the unit runs as $SVC_USER" grep -qx "User=$SVC_USER" /etc/systemd/system/sosvault.service
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify accepts the unit" systemd-analyze verify /etc/systemd/system/sosvault.service
fi
if grep -q '^exec .* run ' "$BIN"; then
  check "the wrapper reads dependencies from \${DENO_DIR:-/var/cache/sosvault/deno}" \
    grep -qx "DENO_DIR='${DENO_DIR:-/var/cache/sosvault/deno}'" "$BIN"
  check "the wrapper never uses -A" bash -c "! grep -Eq \"'(-A|--allow-all)'\" '$BIN'"
fi

# ---- doctor, as the service account -------------------------------------------------------
doctor="$(sosvault-admin doctor 2>&1)"
code=$?
if [ "$code" -eq 0 ] && grep -q '^All checks passed' <<<"$doctor"; then
  pass "sosvault-admin doctor passes (as $SVC_USER)"
else
  fail "sosvault-admin doctor passes (as $SVC_USER)" "$doctor"
fi
printf '%s\n' "$doctor" | sed -n '/^\(ok\|warn\|FAIL\) /s/^/     | /p'
doctor="$(cd / && sudo -n -u "$SVC_USER" env SOSVAULT_ENV=production \
  SOSVAULT_KV_PATH=/var/lib/sosvault/sosvault.kv SOSVAULT_ARTIFACT_DIR=/var/lib/sosvault/artifacts \
  TOKEN_VAULT_MASTER_KEY_FILE="$KEY" JIRA_ALLOWED_HOSTS= "$BIN" doctor 2>&1)"
code=$?
if [ "$code" -eq 0 ]; then pass "sudo -u $SVC_USER $BIN doctor exits 0"; else fail "sudo -u $SVC_USER $BIN doctor exits 0" "$doctor"; fi
doctor="$(TOKEN_VAULT_MASTER_KEY=not-a-key sosvault-admin doctor 2>&1)"
code=$?
if [ "$code" -eq 0 ]; then
  pass "sosvault-admin ignores a stray TOKEN_VAULT_MASTER_KEY in the caller's environment"
else
  fail "sosvault-admin ignores a stray TOKEN_VAULT_MASTER_KEY in the caller's environment" "$doctor"
fi

# ---- drift is repaired, then nothing changes --------------------------------------------------
chmod 0755 /var/lib/sosvault
chmod 0644 "$KEY"
key_drift="$(key_hash)"
run_install repair
check "a world-readable key is tightened back to 640" grep -q "^changed: tightened $KEY" "$TMP/repair.out"
check "a loosened state directory is set back to 700" \
  grep -q '^changed: set /var/lib/sosvault to 0700' "$TMP/repair.out"
check "the repaired key keeps its content" [ "$(key_hash)" = "$key_drift" ]
check "the repaired modes hold" mode_is /var/lib/sosvault "700 $SVC_USER $SVC_USER"
run_install after_repair
check "after a repair, another run changes nothing" bash -c \
  "[ \"\$(cat '$TMP/after_repair.rc')\" = 0 ] && ! grep -q '^changed' '$TMP/after_repair.out'"

# ---- refusals ---------------------------------------------------------------------------------
bin_before="$(sha256sum "$BIN")"
printf '#!/bin/sh\necho "deno 2.9.6 (stable, release, x86_64-unknown-linux-gnu)"\n' >"$TMP/fake-denort-build"
chmod 0755 "$TMP/fake-denort-build"
run_install deno_cli SOSVAULT_BINARY="$TMP/fake-denort-build"
check "a binary built on the deno CLI instead of denort is refused" bash -c \
  "[ \"\$(cat '$TMP/deno_cli.rc')\" != 0 ] && grep -q 'is the deno CLI' '$TMP/deno_cli.out'"
check "… before anything is replaced" [ "$(sha256sum "$BIN")" = "$bin_before" ]
run_install bad_user SOSVAULT_USER='ops.sosvault'
check "a service user name sudo would skip (with a dot) is refused" bash -c \
  "[ \"\$(cat '$TMP/bad_user.rc')\" != 0 ] && grep -q 'SOSVAULT_USER must match' '$TMP/bad_user.out'"

finish
