#!/bin/sh
# cah-bootstrap: run over SSH by `cah swarm up` on every swarm host; idempotent.
#   probe BUNDLE     does what cloud-init should have done and is missing (waits for it first),
#                    then prints key=value facts: platform, node, tunnel_bind, bundle=present|absent
#   install BUNDLE   unpacks the uploaded worker bundle (npm pack + production node_modules) when it
#                    is not installed yet, writes the worker environment read from stdin (0600: it
#                    holds the worker token; @ROOT@ in it becomes $CAH_HOST_ROOT) and the service,
#                    and (re)starts the worker if anything changed
# Every path is relative to $CAH_HOST_ROOT (unset on real servers).
set -eu
R="${CAH_HOST_ROOT:-}"
BASE="$R/opt/cah"
CTL="$BASE/bin/cah-worker-ctl"

log() { echo "cah-bootstrap: $*" >&2; }
fail() { echo "error=$*"; exit 1; }

real_host() { [ -z "$R" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_host() {
  if [ -z "$R" ] && command -v cloud-init >/dev/null 2>&1; then
    timeout 900 cloud-init status --wait >/dev/null 2>&1 || log "cloud-init did not finish cleanly; checking its steps"
  fi
  if [ "$(node_major)" -lt 20 ]; then
    if real_host; then
      log "installing Node.js 20"
      curl -fsSL https://deb.nodesource.com/setup_20.x | bash - >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null 2>&1 || true
    fi
    [ "$(node_major)" -ge 20 ] || fail "Node.js >= 20 is missing on this host"
  fi
  if real_host; then
    id cah >/dev/null 2>&1 || useradd --system --home-dir /var/lib/cah --create-home --shell /usr/sbin/nologin cah
    command -v unbound >/dev/null 2>&1 ||
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unbound >/dev/null 2>&1 ||
      log "unbound is missing: DNS lookups are not cached"
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
  if [ -f "$modules" ]; then
    tar -xzf "$modules" -C "$rel.partial" --no-same-owner
  else
    log "no prebuilt modules for this platform: npm install"
    (cd "$rel.partial" && npm install --omit=dev --no-audit --no-fund --no-package-lock >&2) || fail "npm install failed"
  fi
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
  install) install_bundle "${2:?bundle id}" ;;
  *) echo "usage: cah-bootstrap probe|install BUNDLE" >&2; exit 2 ;;
esac
