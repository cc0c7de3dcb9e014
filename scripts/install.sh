#!/usr/bin/env bash
# Installs sosvault on this host, the way docs/operator-guide.md describes. Run as root from a
# checkout; run it again at any time: every step prints `ok` when there is nothing to do and
# `changed` when it did something, and a second run changes nothing.
#
#   scripts/install.sh            # or: SOSVAULT_USER=svc-sosvault scripts/install.sh
#
# Environment:
#   SOSVAULT_USER     the service account (default sosvault); created when missing
#   SOSVAULT_BINARY   the binary to install (default <repo>/dist/sosvault, from `deno task
#                     compile`). When it does not exist, /usr/local/bin/sosvault becomes a wrapper
#                     that runs <repo>/main.ts with `deno task start`'s permissions.
#   DENO_DIR          wrapper only: the dependency cache the service account reads (default
#                     /var/cache/sosvault/deno); prepared here, readable but not writable by it.
#
# Never overwrites an existing master key. Starts the service only where systemd is running.
set -euo pipefail
umask 022

REPO="$(cd "$(dirname "$0")/.." && pwd)"
SVC_USER="${SOSVAULT_USER:-sosvault}"
BINARY_SRC="${SOSVAULT_BINARY:-$REPO/dist/sosvault}"
CACHE="${DENO_DIR:-/var/cache/sosvault/deno}"

BIN=/usr/local/bin/sosvault
ADMIN=/usr/local/sbin/sosvault-admin
CONF=/etc/sosvault
KEY=$CONF/master.key
ENV_FILE=$CONF/sosvault.env
STATE=/var/lib/sosvault
ARTIFACTS=$STATE/artifacts
SUDOERS=/etc/sudoers.d/$SVC_USER
SYSCTL_CONF=/etc/sysctl.d/60-sosvault.conf
UNIT=/etc/systemd/system/sosvault.service

changed() { printf 'changed: %s\n' "$*"; RESTART=1; }
ok() { printf 'ok: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
RESTART=0

usage() { sed -n '2,17s/^# \{0,1\}//p' "$0"; }
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) usage >&2; exit 64 ;;
esac

# ---- preflight: refuse before changing anything -------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root (it creates a system user and writes /etc)"
for f in main.ts deno.json deploy/sosvault.service; do
  [ -f "$REPO/$f" ] || die "$REPO/$f is missing: run the installer from a sosvault checkout"
done
# Security: the name lands in sudoers and in file names under /etc/sudoers.d, where sudo
# skips names containing a dot.
[[ "$SVC_USER" =~ ^[a-z_][a-z0-9_-]{0,30}$ ]] || die "SOSVAULT_USER must match ^[a-z_][a-z0-9_-]{0,30}\$"
[ "$SVC_USER" != root ] || die "SOSVAULT_USER must not be root"
command -v visudo >/dev/null || die "sudo is not installed (apt-get install sudo / dnf install sudo)"
VERSION="$(sed -n 's/^export const VERSION = "\(.*\)";$/\1/p' "$REPO/src/version.ts")"

MODE=wrapper
if [ -e "$BINARY_SRC" ]; then
  MODE=binary
  said="$("$BINARY_SRC" --version 2>/dev/null | head -n 1 || true)"
  # A binary compiled on the deno CLI instead of denort is the deno CLI: never install it.
  case "$said" in
    "$VERSION") ;;
    deno\ *) die "$BINARY_SRC is the deno CLI ('$said'), not sosvault: rebuild it with a real denort (see deno task compile)" ;;
    *) die "$BINARY_SRC --version answered '$said', not sosvault $VERSION: rebuild it" ;;
  esac
else
  DENO="$(command -v deno || true)"
  [ -n "$DENO" ] || die "no $BINARY_SRC and no deno: build the binary (deno task compile) or install Deno"
fi

# ---- helpers --------------------------------------------------------------------------------
# ensure_dir PATH MODE OWNER GROUP
ensure_dir() {
  local path=$1 mode=$2 owner=$3 group=$4
  # Security: never chown/chmod through a symlink someone else placed.
  [ ! -L "$path" ] || die "$path is a symbolic link: remove it first"
  if [ ! -d "$path" ]; then
    install -d -m "$mode" -o "$owner" -g "$group" "$path"
    changed "created $path ($mode $owner:$group)"
  elif [ "$(stat -c '%a %U %G' "$path")" != "${mode#0} $owner $group" ]; then
    chown "$owner:$group" "$path"
    chmod "$mode" "$path"
    changed "set $path to $mode $owner:$group"
  else
    ok "$path ($mode $owner:$group)"
  fi
}

# install_file SRC DEST MODE OWNER GROUP LABEL: replaces DEST only when content or mode differ.
install_file() {
  local src=$1 dest=$2 mode=$3 owner=$4 group=$5 label=$6
  [ ! -L "$dest" ] || die "$dest is a symbolic link: remove it first"
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    if [ "$(stat -c '%a %U %G' "$dest")" = "${mode#0} $owner $group" ]; then
      ok "$label ($dest)"
      return 0
    fi
    chown "$owner:$group" "$dest"
    chmod "$mode" "$dest"
    changed "set $dest to $mode $owner:$group"
    return 0
  fi
  install -m "$mode" -o "$owner" -g "$group" "$src" "$dest.sosvault-new"
  mv -f "$dest.sosvault-new" "$dest"
  changed "installed $label ($dest)"
}

# secret_file PATH: a root-owned file the service group may read, and nobody else.
# 0600/0640 root:root or root:<service group> are all fine (an operator may tighten it).
secret_file() {
  local path=$1 perms
  perms="$(stat -c '%a %U %G' "$path")"
  case "$perms" in
    "600 root root" | "600 root $SVC_USER" | "640 root root" | "640 root $SVC_USER")
      ok "$path ($perms)"
      ;;
    *)
      chown "root:$SVC_USER" "$path"
      chmod 0640 "$path"
      changed "tightened $path from $perms to 640 root $SVC_USER"
      ;;
  esac
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# ---- 1. the service account --------------------------------------------------------------
if id -u "$SVC_USER" >/dev/null 2>&1; then
  ok "user $SVC_USER"
else
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin --comment "sosvault service" "$SVC_USER"
  changed "created system user $SVC_USER"
fi

# ---- 2. configuration and the master key --------------------------------------------------
ensure_dir "$CONF" 0750 root "$SVC_USER"
if [ -e "$KEY" ]; then
  secret_file "$KEY"
else
  # 32 random bytes as base64 (44 characters). Written under a temporary name, then moved, so
  # a half-written key never exists; never printed.
  tmp="$(mktemp "$CONF/.master.key.XXXXXX")"
  chmod 0640 "$tmp"
  chown "root:$SVC_USER" "$tmp"
  head -c 32 /dev/urandom | base64 -w0 >"$tmp"
  mv -n "$tmp" "$KEY"
  rm -f "$tmp"
  changed "generated the master key $KEY (640 root $SVC_USER); back it up: without it the vault cannot be opened"
fi

if [ -e "$ENV_FILE" ]; then
  secret_file "$ENV_FILE"
else
  cat >"$WORK/env" <<'EOF'
# sosvault site settings, read by sosvault.service (EnvironmentFile=) and by sosvault-admin.
# One KEY=value per line, no quotes and no spaces. Variables: README.md, "Configuration".
# Set by the unit already: SOSVAULT_ENV=production, SOSVAULT_KV_PATH, SOSVAULT_ARTIFACT_DIR.
# Never set TOKEN_VAULT_MASTER_KEY_FILE here (the unit passes the key as a credential).
#JIRA_ALLOWED_HOSTS=jira.example.com
#JIRA_CA_FILE=/etc/sosvault/jira-ca.pem
#SOSVAULT_LISTEN=127.0.0.1:8080
#SOSVAULT_PUBLIC_URL=https://sosvault.example.com
EOF
  install -m 0640 -o root -g "$SVC_USER" "$WORK/env" "$ENV_FILE"
  changed "created $ENV_FILE (all settings commented out)"
fi

# ---- 3. state ------------------------------------------------------------------------------
ensure_dir "$STATE" 0700 "$SVC_USER" "$SVC_USER"
ensure_dir "$ARTIFACTS" 0700 "$SVC_USER" "$SVC_USER"

# ---- 4. the program --------------------------------------------------------------------------
if [ "$MODE" = binary ]; then
  install_file "$BINARY_SRC" "$BIN" 0755 root root "sosvault $VERSION binary"
else
  # Dependencies cached where the service account can read but not write them: it cannot
  # change the code it runs.
  ensure_dir "$CACHE" 0755 root root
  fingerprint() { (cd "$CACHE" && find . -type f ! -name '*_cache_v2*' -printf '%P %s\n' | sort | md5sum); }
  before="$(fingerprint)"
  (cd "$REPO" && DENO_DIR="$CACHE" "$DENO" install -q --frozen-lockfile --entrypoint main.ts) ||
    die "deno install failed: check that the npm registry is reachable"
  if [ "$before" = "$(fingerprint)" ]; then ok "dependencies cached in $CACHE"; else changed "cached dependencies in $CACHE"; fi
  # (Deno's own SQLite caches are left out: only their writer uses them.)
  if [ -n "$(find "$CACHE" ! -name '*_cache_v2*' \( \( -type d ! -perm -0555 \) -o \( -type f ! -perm -0444 \) \) -print -quit)" ]; then
    chmod -R a+rX "$CACHE"
    changed "made $CACHE readable for $SVC_USER"
  else
    ok "$CACHE is readable for $SVC_USER"
  fi

  # The permissions of `deno task start` (deno.json's `server` set), written out as flags the
  # way scripts/compile.ts embeds them in the binary: read from deno.json so the two cannot
  # drift apart, and as flags because a set in the config file makes Deno print an
  # "experimental" warning on every command the operator runs.
  start="$(cd "$REPO" && "$DENO" eval 'console.log(JSON.parse(Deno.readTextFileSync("deno.json")).tasks.start)')"
  [[ "$start" =~ ^deno\ run\ (.+)\ main\.ts$ ]] || die "unexpected start task in deno.json: $start"
  [[ " ${BASH_REMATCH[1]} " == *" --permission-set=server "* ]] ||
    die "the start task must run with --permission-set=server: $start"
  flags="$(cd "$REPO" && "$DENO" eval 'import { permissionFlags, readPermissionSet } from "./scripts/compile.ts"; console.log(["--unstable-kv", ...permissionFlags(await readPermissionSet())].join(" "))')" ||
    die "could not read the server permission set from $REPO/deno.json"
  [[ " $flags " != *" -A "* && " $flags " != *" --allow-all "* ]] || die "the start task must not use -A"
  quoted=""
  for f in $flags; do quoted+=" '$f'"; done
  cat >"$WORK/wrapper" <<EOF
#!/bin/sh
# sosvault $VERSION from source, written by $REPO/scripts/install.sh because no
# compiled binary was built. Permissions: exactly those of \`deno task start\`.
DENO_DIR='$CACHE'
DENO_NO_UPDATE_CHECK=1
export DENO_DIR DENO_NO_UPDATE_CHECK
exec '$DENO' run --no-prompt --cached-only --frozen --config '$REPO/deno.json'$quoted '$REPO/main.ts' "\$@"
EOF
  install_file "$WORK/wrapper" "$BIN" 0755 root root "wrapper running $REPO/main.ts"
fi

# As the service account, from a directory it can enter.
as_service() { (cd / && runuser -u "$SVC_USER" -- "$@"); }
# Only standard output is the answer; what Deno printed to standard error explains a failure.
said="$(as_service "$BIN" --version 2>"$WORK/version.err" | head -n 1 || true)"
[ "$said" = "$VERSION" ] ||
  die "$BIN --version as $SVC_USER answered '$said' ($(head -c 300 "$WORK/version.err" | tr '\n' ' ')), not $VERSION (can $SVC_USER read $REPO, the deno executable and the cache?)"
ok "$BIN runs as $SVC_USER (sosvault $said)"

# The admin helper: any CLI command, as the service account, with the service's settings.
cat >"$WORK/admin" <<EOF
#!/bin/sh
# sosvault-admin COMMAND…: runs \`sosvault COMMAND…\` as $SVC_USER with the settings of
# sosvault.service, for example \`sosvault-admin users add alice\`. Written by scripts/install.sh.
set -eu
if [ "\$(id -u)" -ne 0 ]; then echo "sosvault-admin: run it as root (it switches to $SVC_USER)" >&2; exit 77; fi
if [ -z "\${SOSVAULT_ADMIN_CLEAN:-}" ]; then
  # Nothing of the caller's environment (a stray TOKEN_VAULT_MASTER_KEY…) reaches sosvault.
  exec env -i SOSVAULT_ADMIN_CLEAN=1 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "\$0" "\$@"
fi
set -a
SOSVAULT_ENV=production
SOSVAULT_KV_PATH=$STATE/sosvault.kv
SOSVAULT_ARTIFACT_DIR=$ARTIFACTS
if [ -r $ENV_FILE ]; then . $ENV_FILE; fi
TOKEN_VAULT_MASTER_KEY_FILE=$KEY
set +a
cd $STATE
exec runuser -u $SVC_USER -- $BIN "\$@"
EOF
install_file "$WORK/admin" "$ADMIN" 0755 root root "admin helper"

# ---- 5. sudo rules, exactly as doctor prints them ----------------------------------------
as_service "$BIN" doctor --sudoers --user "$SVC_USER" >"$WORK/sudoers" ||
  die "sosvault doctor --sudoers failed"
visudo -cqf "$WORK/sudoers" >/dev/null || die "visudo rejects the generated rules (see $WORK/sudoers)"
if [ -f "$SUDOERS" ] && cmp -s "$WORK/sudoers" "$SUDOERS" &&
  [ "$(stat -c '%a %U %G' "$SUDOERS")" = "440 root root" ]; then
  ok "sudo rules ($SUDOERS)"
else
  install -m 0440 -o root -g root "$WORK/sudoers" "$SUDOERS.sosvault-new"
  mv -f "$SUDOERS.sosvault-new" "$SUDOERS"
  changed "installed the sudo rules for $SVC_USER ($SUDOERS)"
fi

# ---- 6. kernel link protections (the sudo cat rule relies on them) ----------------------
cat >"$WORK/sysctl" <<'EOF'
# Written by sosvault's scripts/install.sh. sosvault's `sudo cat` rule names files in /var/tmp;
# these stop another local user from planting a link there that root's cat would follow.
fs.protected_symlinks = 1
fs.protected_hardlinks = 1
EOF
install_file "$WORK/sysctl" "$SYSCTL_CONF" 0644 root root "persistent link protections"
if [ "$(sysctl -n fs.protected_symlinks fs.protected_hardlinks | tr '\n' ' ')" = "1 1 " ]; then
  ok "fs.protected_symlinks=1 fs.protected_hardlinks=1 (live)"
else
  sysctl -qw fs.protected_symlinks=1 fs.protected_hardlinks=1 ||
    die "cannot set fs.protected_symlinks/fs.protected_hardlinks (a container? set them on the host)"
  changed "set fs.protected_symlinks=1 fs.protected_hardlinks=1 (live)"
fi

# ---- 7. the systemd unit ---------------------------------------------------------------------
sed -e "s/^User=sosvault\$/User=$SVC_USER/" -e "s/^Group=sosvault\$/Group=$SVC_USER/" \
  "$REPO/deploy/sosvault.service" >"$WORK/unit"
unit_restart=$RESTART
RESTART=0
install_file "$WORK/unit" "$UNIT" 0644 root root "systemd unit"
unit_changed=$RESTART
RESTART=$((unit_restart | unit_changed))

if [ -d /run/systemd/system ]; then
  if [ "$unit_changed" = 1 ]; then
    systemctl daemon-reload
    changed "systemctl daemon-reload"
  fi
  if systemctl is-enabled --quiet sosvault.service; then
    ok "sosvault.service is enabled"
  else
    systemctl enable --quiet sosvault.service
    changed "enabled sosvault.service"
  fi
  if ! systemctl is-active --quiet sosvault.service; then
    systemctl start sosvault.service
    changed "started sosvault.service"
  elif [ "$RESTART" = 1 ]; then
    systemctl restart sosvault.service
    changed "restarted sosvault.service (its program or configuration changed)"
  else
    ok "sosvault.service is running"
  fi
else
  ok "systemd is not running here: $UNIT is installed but not started (on a systemd host: systemctl enable --now sosvault)"
fi

echo "done: check the host with: sosvault-admin doctor"
