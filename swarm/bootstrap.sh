#!/bin/sh
# cah-bootstrap: run over SSH by `cah swarm up` on every swarm host; idempotent.
#   probe BUNDLE     does what cloud-init should have done and is missing (waits for it first),
#                    installs the pinned Node.js (node-release.env beside this script) on a real
#                    server, then prints key=value facts: platform, node, tunnel_bind, bundle=present|absent
#   node             installs the pinned Node.js for this machine's architecture, verified by SHA-256
#   install BUNDLE   unpacks the uploaded worker bundle (npm pack + node_modules built for this
#                    platform from the lockfile) when it
#                    is not installed yet, writes the worker environment read from stdin (0600: it
#                    holds the worker token; @ROOT@ in it becomes $CAH_HOST_ROOT) and the service,
#                    and (re)starts the worker if anything changed
# Every path is relative to $CAH_HOST_ROOT (unset on real servers).
set -eu
R="${CAH_HOST_ROOT:-}"
BASE="$R/opt/cah"
CTL="$BASE/bin/cah-worker-ctl"
NODE_DIR="$BASE/node"
# The pinned Node.js, once installed, comes before any other.
PATH="$NODE_DIR/bin:$PATH"
export PATH

log() { echo "cah-bootstrap: $*" >&2; }
fail() { echo "error=$*"; exit 1; }

real_host() { [ -z "$R" ] && [ "$(id -u)" = 0 ]; }
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

fetch() {
  if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 5 --connect-timeout 20 -o "$2" "$1"
  else wget -q -T 60 -t 5 -O "$2" "$1"; fi
}

# The Node.js release pinned in swarm/node-release.json, for this architecture: downloaded to a file
# (never piped into a shell), checked against its SHA-256, unpacked beside cah. No apt, no PPA.
install_node() {
  . "$BASE/bin/node-release.env"
  case "$(uname -m)" in
    x86_64 | amd64) url=$NODE_X64_URL sum=$NODE_X64_SHA256 ;;
    aarch64 | arm64) url=$NODE_ARM64_URL sum=$NODE_ARM64_SHA256 ;;
    *) fail "no pinned Node.js for architecture $(uname -m)" ;;
  esac
  [ "$("$NODE_DIR/bin/node" -v 2>/dev/null)" = "v$NODE_VERSION" ] && return 0
  log "installing Node.js $NODE_VERSION"
  mkdir -p "$BASE/incoming"
  tmp="$BASE/incoming/node-$NODE_VERSION.tgz"
  fetch "$url" "$tmp" || { rm -f "$tmp"; fail "could not download Node.js $NODE_VERSION from $url"; }
  echo "$sum  $tmp" | sha256sum -c - >/dev/null 2>&1 ||
    { rm -f "$tmp"; fail "the Node.js download from $url does not match the SHA-256 pinned in swarm/node-release.json: refused"; }
  rm -rf "$NODE_DIR.partial"
  mkdir -p "$NODE_DIR.partial"
  tar -xzf "$tmp" -C "$NODE_DIR.partial" --strip-components=1 --no-same-owner package/bin/node package/LICENSE ||
    fail "the Node.js archive does not unpack"
  rm -f "$tmp"
  [ "$("$NODE_DIR.partial/bin/node" -v 2>/dev/null)" = "v$NODE_VERSION" ] || { rm -rf "$NODE_DIR.partial"; fail "the pinned Node.js $NODE_VERSION does not run on this host"; }
  rm -rf "$NODE_DIR"
  mv "$NODE_DIR.partial" "$NODE_DIR"
}

# apt only for what is not critical (unbound when cloud-init did not install it): it waits for the
# dpkg lock instead of failing on it, and its log is shown when it fails.
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q "$@" >"$BASE/apt.log" 2>&1 ||
    { log "apt-get install $* failed: $(tail -n 5 "$BASE/apt.log" | tr '\n' ' ')"; return 1; }
}

ensure_host() {
  if [ -z "$R" ] && command -v cloud-init >/dev/null 2>&1; then
    timeout 900 cloud-init status --wait >/dev/null 2>&1 || log "cloud-init did not finish cleanly; checking its steps"
  fi
  if real_host; then install_node; fi
  [ "$(node_major)" -ge 20 ] || fail "Node.js >= 20 is missing on this host"
  if real_host; then
    id cah >/dev/null 2>&1 || useradd --system --home-dir /var/lib/cah --create-home --shell /usr/sbin/nologin cah
    if ! command -v unbound >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
      apt_install unbound || log "unbound is missing: DNS lookups are not cached"
    fi
  fi
}

probe() {
  bundle="$1"
  ensure_host
  libc=glibc
  if ls /lib/ld-musl-* >/dev/null 2>&1; then libc=musl; fi
  echo "platform=$(node -p 'process.platform + "-" + process.arch')-$libc"
  echo "node=$(node -v)"
  echo "tunnel_bind=${CAH_TUNNEL_BIND:-127.0.0.1}"
  if [ -f "$BASE/releases/$bundle/.complete" ]; then echo "bundle=present"; else echo "bundle=absent"; fi
}

unpack() {
  bundle="$1"
  rel="$BASE/releases/$bundle"
  [ -f "$rel/.complete" ] && return 0
  pack="$BASE/incoming/$bundle.tgz"
  modules="$BASE/incoming/$bundle-modules.tgz"
  [ -f "$pack" ] || fail "bundle $bundle was not uploaded"
  rm -rf "$rel.partial"
  mkdir -p "$rel.partial"
  tar -xzf "$pack" -C "$rel.partial" --strip-components=1 --no-same-owner
  # Built for this host's platform from the lockfile by `cah swarm up`: never an npm install here.
  [ -f "$modules" ] || fail "the worker modules of bundle $bundle were not uploaded"
  tar -xzf "$modules" -C "$rel.partial" --no-same-owner
  touch "$rel.partial/.complete"
  rm -rf "$rel"
  mv "$rel.partial" "$rel"
  rm -f "$pack" "$modules"
}

install_bundle() {
  bundle="$1"
  mkdir -p "$BASE/bin" "$BASE/releases" "$BASE/incoming"
  unpack "$bundle"
  previous=$(readlink "$BASE/current" 2>/dev/null || true)
  ln -sfn "releases/$bundle" "$BASE/current"
  node "$BASE/current/dist/src/cli/main.js" worker --help >/dev/null 2>"$BASE/load-check.log" ||
    fail "the worker does not load: $(grep -m 1 -E 'Error|Cannot find' "$BASE/load-check.log")"
  cp "$BASE/current/swarm/cah-worker-ctl.sh" "$CTL.tmp" && chmod 0755 "$CTL.tmp" && mv "$CTL.tmp" "$CTL"

  umask 077
  mkdir -p "$R/etc/cah"
  sed -e "s#@ROOT@#$R#g" >"$R/etc/cah/worker.env.new"
  grep -q '^CAH_WORKER_TOKEN=' "$R/etc/cah/worker.env.new" && grep -q '^CAH_COORDINATOR=' "$R/etc/cah/worker.env.new" &&
    grep -q '^CAH_ACTOR_ID=' "$R/etc/cah/worker.env.new" || fail "the worker environment on stdin is incomplete"
  changed=no
  if cmp -s "$R/etc/cah/worker.env.new" "$R/etc/cah/worker.env"; then rm -f "$R/etc/cah/worker.env.new"
  else mv "$R/etc/cah/worker.env.new" "$R/etc/cah/worker.env"; changed=yes; fi
  chmod 0600 "$R/etc/cah/worker.env"
  umask 022
  [ "$previous" = "releases/$bundle" ] || changed=yes

  if [ "$(sh "$CTL" mode)" = systemd ]; then
    sed -e "s#@NODE@#$(command -v node)#g" -e "s#@ROOT@#$R#g" "$BASE/current/swarm/cah-worker.service" >/etc/systemd/system/cah-worker.service.new
    if cmp -s /etc/systemd/system/cah-worker.service.new /etc/systemd/system/cah-worker.service; then rm -f /etc/systemd/system/cah-worker.service.new
    else mv /etc/systemd/system/cah-worker.service.new /etc/systemd/system/cah-worker.service; changed=yes; fi
  fi

  if [ "$changed" = yes ] || ! sh "$CTL" status >/dev/null 2>&1; then
    sh "$CTL" restart >/dev/null
    echo "restarted=yes"
  else
    echo "restarted=no"
  fi
  for old in "$BASE"/releases/*; do
    [ "$old" = "$BASE/releases/$bundle" ] || rm -rf "$old"
  done
  sleep 1
  status=$(sh "$CTL" status 2>/dev/null) || fail "the worker exited right after its start: $(sh "$CTL" logs 2>/dev/null | tail -n 5 | tr '\n' ' ')"
  echo "worker=$status"
}

case "${1:-}" in
  probe) probe "${2:?bundle id}" ;;
  node) install_node; echo "node=$(node -v)" ;;
  install) install_bundle "${2:?bundle id}" ;;
  *) echo "usage: cah-bootstrap probe|install BUNDLE | node" >&2; exit 2 ;;
esac
