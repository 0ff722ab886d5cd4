#!/usr/bin/env bash
# Build and run a real local Kubernetes control plane (etcd + kube-apiserver)
# for tests and the demo. No Docker, no binary downloads: everything is built
# from Go modules (pinned in hack/cp/*/go.mod + go.sum) with the local Go.
#
#   hack/control-plane.sh build       build (once) and cache the binaries
#   hack/control-plane.sh promtool    build (once) and cache promtool, which only the
#                                     tests need (tests/chart/rendering.rs checks the
#                                     chart's alerts)
#   hack/control-plane.sh env         print `export` lines for the cached binaries
#   hack/control-plane.sh up DIR      start etcd + kube-apiserver, state in DIR
#   hack/control-plane.sh up-node DIR the same plus a node that runs pods:
#                                     containerd, kubelet, kube-controller-manager,
#                                     kube-scheduler (see hack/node.sh)
#   hack/control-plane.sh load-image DIR FILE  import an image archive
#                                     (docker-archive) into the node's containerd
#   hack/control-plane.sh down DIR    stop them all and remove what the node left
#                                     (idempotent, never fails)
#   hack/control-plane.sh status DIR  exit 0 if the processes are running
#
# Environment:
#   SSW_CACHE_DIR          cache root (default: $HOME/.cache/scaleset-watch);
#                          binaries live in $SSW_CACHE_DIR/bin/<name>-<version>
#   SSW_CP_TIMEOUT         seconds to wait for readiness in `up` (default 120)
#   SSW_APISERVER_EXTRA_ARGS  extra kube-apiserver flags (word-split)
#
# After `up DIR`, `. DIR/env` exports KUBECONFIG, SSW_APISERVER_URL,
# SSW_ADMIN_TOKEN and SSW_CP_DIR; after `up-node DIR` also SSW_NODE_IP (the
# node's address: pods reach the host there, e.g. the API server at
# https://$SSW_NODE_IP:<same port> and a simulator bound to it). The admin identity is a static token in the
# group system:masters; the CA is DIR/certs/apiserver.crt (self-signed by the
# apiserver at startup).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CP_MOD_DIR="$HACK_DIR/cp"

# Pinned versions. kube-apiserver's and etcd's must match hack/cp/*/go.mod.
KUBE_VERSION=v1.34.12
ETCD_VERSION=v3.5.35
HELM_VERSION=v3.19.5
# promtool (checks the chart's PrometheusRule in tests/chart/rendering.rs): the Go module
# github.com/prometheus/prometheus v0.3XX.Y is Prometheus v3.XX.Y.
PROMETHEUS_MODULE_VERSION=v0.316.0
PROMETHEUS_VERSION=3.16.0
# Lints .github/workflows (tests/release.rs); the release workflow cannot run here.
ACTIONLINT_VERSION=v1.7.12

CACHE_DIR="${SSW_CACHE_DIR:-$HOME/.cache/scaleset-watch}"
BIN_DIR="$CACHE_DIR/bin"
KUBE_APISERVER_BIN="$BIN_DIR/kube-apiserver-$KUBE_VERSION"
ETCD_BIN="$BIN_DIR/etcd-$ETCD_VERSION"
HELM_BIN="$BIN_DIR/helm-$HELM_VERSION"
PROMTOOL_BIN="$BIN_DIR/promtool-v$PROMETHEUS_VERSION"
ACTIONLINT_BIN="$BIN_DIR/actionlint-$ACTIONLINT_VERSION"
KUBELET_BIN="$BIN_DIR/kubelet-$KUBE_VERSION"
KCM_BIN="$BIN_DIR/kube-controller-manager-$KUBE_VERSION"
KUBE_SCHEDULER_BIN="$BIN_DIR/kube-scheduler-$KUBE_VERSION"
# Directory of plain-named symlinks (helm, etcd, kube-apiserver) for PATH and
# for tools that want envtest-style assets (KUBEBUILDER_ASSETS).
PATH_DIR="$CACHE_DIR/path/kube-$KUBE_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"

log() { echo "control-plane: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

# ---------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------

# Never download a toolchain; never pick up a go.work from a parent dir;
# static binaries (no cgo) like the upstream releases.
GO_ENV=(env GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0)

# run_build NAME OUT CMD...: runs the build (`go build -v`/`go install -v`)
# niced, printing a progress line every 30s (number of packages compiled so
# far) and the errors if it fails.
run_build() {
  local name=$1 out=$2; shift 2
  local start=$SECONDS logf pid rc=0 last=$SECONDS n
  logf=$(mktemp)
  log "building $name (first time only; kube-apiserver takes 10-25 min on 2 cores)..."
  nice -n 10 "$@" >"$logf" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS - last >= 30)); then
      last=$SECONDS
      n=$(grep -cE '^[A-Za-z0-9._~/+-]+$' "$logf" || true)
      log "  $name: $n packages compiled so far ($((SECONDS - start))s)"
    fi
  done
  wait "$pid" || rc=$?
  if [[ $rc != 0 || ! -s $out ]]; then
    grep -vE '^[A-Za-z0-9._~/+-]+$' "$logf" | tail -n 60 >&2 || true
    rm -f "$logf" "$out"
    die "building $name failed (exit $rc)"
  fi
  rm -f "$logf"
  chmod 0755 "$out"
  log "built $name in $((SECONDS - start))s"
}

# Checks that hack/cp/$1/go.mod pins k8s.io/kubernetes $KUBE_VERSION; sets LD
# to the release ldflags (so /version and kubelet report the real version).
kube_ldflags() {
  local got
  got=$(cd "$CP_MOD_DIR/$1" && "${GO_ENV[@]}" go list -mod=readonly -m -f '{{.Version}}' k8s.io/kubernetes)
  [[ $got == "$KUBE_VERSION" ]] || die "hack/cp/$1/go.mod pins k8s.io/kubernetes $got, script says $KUBE_VERSION"
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  LD="-s -w"
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LD+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    LD+=" -X $pkg.gitTreeState=clean"
  done
}

build_kube_apiserver() {
  local mod="$CP_MOD_DIR/kube-apiserver" tmp LD
  kube_ldflags kube-apiserver
  local ld=$LD
  tmp="$KUBE_APISERVER_BIN.tmp.$$"
  (cd "$mod" && run_build "kube-apiserver $KUBE_VERSION" "$tmp" \
    "${GO_ENV[@]}" go build -v -p 2 -mod=readonly -trimpath -ldflags "$ld" \
    -o "$tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv -f "$tmp" "$KUBE_APISERVER_BIN"
}

# kubelet, kube-controller-manager and kube-scheduler in one `go build`
# (they share most packages, and the apiserver's are already in Go's build
# cache): about 5 minutes on 2 cores.
build_node() {
  local mod="$CP_MOD_DIR/node" tmp LD
  kube_ldflags node
  tmp=$(mktemp -d "$BIN_DIR/node.tmp.XXXXXX")
  (cd "$mod" && run_build "kubelet, kube-controller-manager, kube-scheduler $KUBE_VERSION" "$tmp/kubelet" \
    "${GO_ENV[@]}" go build -v -p 2 -mod=readonly -trimpath -ldflags "$LD" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler)
  [[ -s $tmp/kube-controller-manager && -s $tmp/kube-scheduler ]] || die "node build produced no binaries"
  chmod 0755 "$tmp"/*
  mv -f "$tmp/kube-controller-manager" "$KCM_BIN"
  mv -f "$tmp/kube-scheduler" "$KUBE_SCHEDULER_BIN"
  mv -f "$tmp/kubelet" "$KUBELET_BIN"
  rm -rf "$tmp"
}

build_actionlint() {
  local gobin
  gobin=$(mktemp -d)
  (cd "$gobin" && run_build "actionlint $ACTIONLINT_VERSION" "$gobin/actionlint" \
    "${GO_ENV[@]}" GOBIN="$gobin" go install -v -p 2 -trimpath -ldflags "-s -w" \
    "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION")
  mv -f "$gobin/actionlint" "$ACTIONLINT_BIN"
  rm -rf "$gobin"
}

build_etcd() {
  local mod="$CP_MOD_DIR/etcd" tmp got
  got=$(cd "$mod" && "${GO_ENV[@]}" go list -mod=readonly -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
  [[ $got == "$ETCD_VERSION" ]] || die "hack/cp/etcd/go.mod pins go.etcd.io/etcd/server/v3 $got, script says $ETCD_VERSION"
  tmp="$ETCD_BIN.tmp.$$"
  (cd "$mod" && run_build "etcd $ETCD_VERSION" "$tmp" \
    "${GO_ENV[@]}" go build -v -p 2 -mod=readonly -trimpath -ldflags "-s -w" \
    -o "$tmp" go.etcd.io/etcd/server/v3)
  mv -f "$tmp" "$ETCD_BIN"
}

build_helm() {
  # helm.sh/helm/v3 has no replace directives, so `go install pkg@version`
  # works and is pinned by helm's own go.mod/go.sum (checked against sumdb).
  local gobin minor
  gobin=$(mktemp -d)
  # Kubernetes version helm assumes for `helm template`/lint without a
  # cluster: the minor of the client-go it is built with (1.34 for 3.19).
  minor=34
  local ld="-s -w"
  ld+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ld+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
  ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
  ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  (cd "$gobin" && run_build "helm $HELM_VERSION" "$gobin/helm" \
    "${GO_ENV[@]}" GOBIN="$gobin" go install -v -p 2 -trimpath -ldflags "$ld" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
  mv -f "$gobin/helm" "$HELM_BIN"
  rm -rf "$gobin"
}

build_promtool() {
  # Like helm: no replace directives, so `go install pkg@version` is pinned by
  # Prometheus' own go.mod/go.sum. `remove_all_sd` leaves out the service
  # discovery plugins (AWS, Azure, GCE, Kubernetes, ...), which rule checks
  # never use and which are most of the build.
  local gobin ld pkg=github.com/prometheus/common/version
  gobin=$(mktemp -d)
  ld="-s -w -X $pkg.Version=$PROMETHEUS_VERSION -X $pkg.Branch=HEAD"
  ld+=" -X $pkg.BuildUser=scaleset-watch -X $pkg.Revision=$PROMETHEUS_MODULE_VERSION"
  (cd "$gobin" && run_build "promtool $PROMETHEUS_VERSION" "$gobin/promtool" \
    "${GO_ENV[@]}" GOBIN="$gobin" go install -v -p 2 -trimpath -tags remove_all_sd \
    -ldflags "$ld" "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION")
  mv -f "$gobin/promtool" "$PROMTOOL_BIN"
  rm -rf "$gobin"
}

link_path_dir() {
  mkdir -p "$PATH_DIR"
  ln -sfn "$KUBE_APISERVER_BIN" "$PATH_DIR/kube-apiserver"
  ln -sfn "$ETCD_BIN" "$PATH_DIR/etcd"
  ln -sfn "$HELM_BIN" "$PATH_DIR/helm"
  if [[ -x $PROMTOOL_BIN ]]; then ln -sfn "$PROMTOOL_BIN" "$PATH_DIR/promtool"; fi
  ln -sfn "$KUBELET_BIN" "$PATH_DIR/kubelet"
  ln -sfn "$KCM_BIN" "$PATH_DIR/kube-controller-manager"
  ln -sfn "$KUBE_SCHEDULER_BIN" "$PATH_DIR/kube-scheduler"
}

all_built() {
  [[ -x $KUBE_APISERVER_BIN && -x $ETCD_BIN && -x $HELM_BIN \
    && -x $KUBELET_BIN && -x $KCM_BIN && -x $KUBE_SCHEDULER_BIN && -x $ACTIONLINT_BIN \
    && -x $PATH_DIR/helm && -x $PATH_DIR/etcd && -x $PATH_DIR/kube-apiserver \
    && -x $PATH_DIR/kubelet && -x $PATH_DIR/kube-controller-manager \
    && -x $PATH_DIR/kube-scheduler && -s $PAUSE_TAR ]]
}

cmd_build() {
  node_packages
  all_built && return 0
  command -v go >/dev/null || [[ -x /usr/local/go/bin/go ]] || die "go not found"
  command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
  mkdir -p "$BIN_DIR"
  # Serialise concurrent builds (e.g. parallel test harnesses).
  exec 9>"$CACHE_DIR/build.lock"
  if ! flock -n 9; then
    log "waiting for another build to finish..."
    flock 9
  fi
  [[ -x $ETCD_BIN ]] || build_etcd
  [[ -x $HELM_BIN ]] || build_helm
  [[ -x $KUBE_APISERVER_BIN ]] || build_kube_apiserver
  [[ -x $KUBELET_BIN && -x $KCM_BIN && -x $KUBE_SCHEDULER_BIN ]] || build_node
  [[ -x $ACTIONLINT_BIN ]] || build_actionlint
  build_pause_image
  link_path_dir
  exec 9>&-
}

cmd_promtool() {
  [[ -x $PROMTOOL_BIN && -x $PATH_DIR/promtool ]] && return 0
  command -v go >/dev/null || [[ -x /usr/local/go/bin/go ]] || die "go not found"
  command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
  mkdir -p "$BIN_DIR" "$PATH_DIR"
  exec 9>"$CACHE_DIR/build.lock"
  if ! flock -n 9; then
    log "waiting for another build to finish..."
    flock 9
  fi
  [[ -x $PROMTOOL_BIN ]] || build_promtool
  ln -sfn "$PROMTOOL_BIN" "$PATH_DIR/promtool"
  exec 9>&-
}

cmd_env() {
  all_built || log "warning: binaries not built yet; run: $0 build"
  cat <<EOF
export KUBE_APISERVER_BIN='$KUBE_APISERVER_BIN'
export ETCD_BIN='$ETCD_BIN'
export HELM_BIN='$HELM_BIN'
export PROMTOOL_BIN='$PROMTOOL_BIN'
export KUBELET_BIN='$KUBELET_BIN'
export KUBE_CONTROLLER_MANAGER_BIN='$KCM_BIN'
export KUBE_SCHEDULER_BIN='$KUBE_SCHEDULER_BIN'
export ACTIONLINT_BIN='$ACTIONLINT_BIN'
export KUBEBUILDER_ASSETS='$PATH_DIR'
export PATH='$PATH_DIR':"\$PATH"
EOF
}

# ---------------------------------------------------------------------------
# up / down
# ---------------------------------------------------------------------------

# Sets PORT to a port in 20000-32767 (below Linux's ephemeral range, so
# outgoing connections don't take it) that no TCP socket uses and that this
# run has not handed out yet. (Not called in $(...): USED_PORTS must persist.)
USED_PORTS=" "
free_port() {
  local p i
  for ((i = 0; i < 500; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
    [[ $USED_PORTS == *" $p "* ]] && continue
    if ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then continue; fi
    USED_PORTS+="$p "
    PORT=$p
    return 0
  done
  die "no free port found"
}

pid_alive() { # $1=pidfile $2=expected binary substring
  local pid
  [[ -s $1 ]] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse: the process must be the binary we started.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# Start "$@" detached in its own session; the child writes its own pid (the
# pid of the exec'ed binary, even if setsid had to fork).
start_detached() { # $1=pidfile $2=logfile rest=command
  local pidfile=$1 logfile=$2; shift 2
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
    >"$logfile" 2>&1 </dev/null &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  die "could not start $3"
}

tail_logs() {
  local f
  for f in "$@"; do
    [[ -f $f ]] || continue
    log "---- last lines of $f ----"
    tail -n 40 "$f" >&2 || true
  done
}

stop_pidfile() { # $1=pidfile $2=binary substring
  local pidfile=$1 pat=$2 pid i
  if pid_alive "$pidfile" "$pat"; then
    pid=$(<"$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      pid_alive "$pidfile" "$pat" || break
      sleep 0.1
    done
    if pid_alive "$pidfile" "$pat"; then
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
  fi
  rm -f "$pidfile"
}

cmd_down() {
  local dir=${1:-}
  [[ -n $dir ]] || usage
  [[ -d $dir ]] || return 0
  CP_DIR="$(cd "$dir" && pwd)"
  node_down || true
  stop_pidfile "$dir/kube-apiserver.pid" kube-apiserver || true
  stop_pidfile "$dir/etcd.pid" etcd || true
  return 0
}

cmd_status() {
  local dir=${1:-}
  [[ -n $dir ]] || usage
  pid_alive "$dir/etcd.pid" etcd && pid_alive "$dir/kube-apiserver.pid" kube-apiserver || return 1
  [[ -d $dir/node ]] || return 0
  pid_alive "$dir/node/containerd.pid" containerd && pid_alive "$dir/node/kubelet.pid" kubelet
}

# curl against the apiserver as admin; $1=method $2=path [$3=json body]
api() {
  local args=(-sS --max-time 10 --cacert "$CP_DIR/certs/apiserver.crt"
    -H "Authorization: Bearer $ADMIN_TOKEN" -X "$1")
  if [[ $# -ge 3 ]]; then
    args+=(-H "Content-Type: application/json" --data-binary "$3")
  fi
  curl "${args[@]}" "$APISERVER_URL$2"
}

start_once() {
  # Runs in a `||` context, where errexit is off: every failure here either
  # calls die (which exits) or returns 3 (port clash, retried).
  local etcd_port peer_port api_port
  free_port; etcd_port=$PORT
  free_port; peer_port=$PORT
  free_port; api_port=$PORT
  APISERVER_URL="https://127.0.0.1:$api_port"
  local etcd_url="http://127.0.0.1:$etcd_port" peer_url="http://127.0.0.1:$peer_port"

  rm -rf "$CP_DIR/etcd-data" "$CP_DIR/certs" || die "cannot clean $CP_DIR"
  start_detached "$CP_DIR/etcd.pid" "$CP_DIR/etcd.log" "$ETCD_BIN" \
    --name=ssw \
    --data-dir="$CP_DIR/etcd-data" \
    --listen-client-urls="$etcd_url" --advertise-client-urls="$etcd_url" \
    --listen-peer-urls="$peer_url" --initial-advertise-peer-urls="$peer_url" \
    --initial-cluster="ssw=$peer_url" --initial-cluster-state=new \
    --unsafe-no-fsync \
    --log-level=warn

  local deadline=$((SECONDS + TIMEOUT))
  until curl -s --max-time 2 "$etcd_url/health" 2>/dev/null | grep -q '"health":"true"'; do
    if ! pid_alive "$CP_DIR/etcd.pid" etcd; then
      grep -q 'address already in use' "$CP_DIR/etcd.log" && return 3
      tail_logs "$CP_DIR/etcd.log"; die "etcd exited"
    fi
    ((SECONDS < deadline)) || { tail_logs "$CP_DIR/etcd.log"; die "etcd not healthy after ${TIMEOUT}s"; }
    sleep 0.2
  done

  local issuer="$APISERVER_URL"
  # shellcheck disable=SC2206
  local extra=(${SSW_APISERVER_EXTRA_ARGS:-})
  if [[ -n ${NODE_IP:-} ]]; then
    # Pods verify the API server at NODE_IP (its certificate names the
    # advertise address), get ServiceAccount token volumes (admission plugin
    # ServiceAccount), and kubectl logs/exec go to the node's InternalIP.
    extra+=(--advertise-address="$NODE_IP" --kubelet-preferred-address-types=InternalIP)
  else
    # No kube-controller-manager makes default ServiceAccounts.
    extra+=(--advertise-address=127.0.0.1 --disable-admission-plugins=ServiceAccount)
  fi
  start_detached "$CP_DIR/kube-apiserver.pid" "$CP_DIR/kube-apiserver.log" "$KUBE_APISERVER_BIN" \
    --etcd-servers="$etcd_url" \
    --bind-address=127.0.0.1 \
    --secure-port="$api_port" \
    --cert-dir="$CP_DIR/certs" \
    --authorization-mode=RBAC \
    --anonymous-auth=true \
    --token-auth-file="$CP_DIR/tokens.csv" \
    --service-account-issuer="$issuer" \
    --service-account-jwks-uri="$issuer/openid/v1/jwks" \
    --service-account-key-file="$CP_DIR/sa.key" \
    --service-account-signing-key-file="$CP_DIR/sa.key" \
    --api-audiences="$issuer" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --allow-privileged=true \
    --endpoint-reconciler-type=none \
    --profiling=false \
    "${extra[@]}"

  local out
  until [[ -s $CP_DIR/certs/apiserver.crt ]] && out=$(api GET /readyz 2>/dev/null) && [[ $out == ok ]]; do
    if ! pid_alive "$CP_DIR/kube-apiserver.pid" kube-apiserver; then
      if grep -q 'address already in use' "$CP_DIR/kube-apiserver.log"; then
        stop_pidfile "$CP_DIR/etcd.pid" etcd
        return 3
      fi
      tail_logs "$CP_DIR/etcd.log" "$CP_DIR/kube-apiserver.log"; die "kube-apiserver exited"
    fi
    if ((SECONDS >= deadline)); then
      tail_logs "$CP_DIR/etcd.log" "$CP_DIR/kube-apiserver.log"
      log "readyz: $(api GET '/readyz?verbose' 2>&1 | grep -v '^\[+\]' | tail -n 20)"
      die "kube-apiserver not ready after ${TIMEOUT}s"
    fi
    sleep 0.3
  done
  return 0
}

cmd_up() {
  local dir=${1:-} node=${2:-}
  [[ -n $dir ]] || usage
  TIMEOUT=${SSW_CP_TIMEOUT:-120}
  for t in curl openssl setsid ss; do
    command -v "$t" >/dev/null || die "$t is required"
  done
  cmd_build
  mkdir -p "$dir"
  CP_DIR="$(cd "$dir" && pwd)"
  if pid_alive "$CP_DIR/etcd.pid" etcd || pid_alive "$CP_DIR/kube-apiserver.pid" kube-apiserver; then
    die "a control plane is already running in $CP_DIR (run: $0 down $CP_DIR)"
  fi
  # On any failure below, leave nothing running.
  trap 'rc=$?; if ((rc != 0)); then cmd_down "$CP_DIR"; fi' EXIT
  NODE_IP=""
  if [[ $node == node ]]; then
    node_down # leftovers of an earlier run in the same DIR
    node_net_up
  fi

  ADMIN_TOKEN=$(openssl rand -hex 32)
  (umask 077
    echo "$ADMIN_TOKEN" >"$CP_DIR/admin-token"
    echo "$ADMIN_TOKEN,ssw-admin,ssw-admin,\"system:masters\"" >"$CP_DIR/tokens.csv"
    [[ -s $CP_DIR/sa.key ]] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
      -out "$CP_DIR/sa.key" 2>/dev/null)

  local attempt rc
  for attempt in 1 2 3; do
    rc=0
    start_once || rc=$?
    [[ $rc == 0 ]] && break
    log "port clash, retrying (attempt $attempt)"
    stop_pidfile "$CP_DIR/kube-apiserver.pid" kube-apiserver
    stop_pidfile "$CP_DIR/etcd.pid" etcd
  done
  [[ $rc == 0 ]] || die "could not start the control plane"

  # Let anyone read the service-account issuer discovery documents
  # (/.well-known/openid-configuration, /openid/v1/jwks), like a cloud
  # provider's public OIDC issuer.
  local crb='{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",
    "metadata":{"name":"ssw:service-account-issuer-discovery:unauthenticated"},
    "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"system:service-account-issuer-discovery"},
    "subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"system:unauthenticated"}]}'
  local out
  out=$(api POST /apis/rbac.authorization.k8s.io/v1/clusterrolebindings "$crb") \
    || die "creating the discovery ClusterRoleBinding failed: $out"
  grep -q '"kind": *"ClusterRoleBinding"\|AlreadyExists' <<<"$out" \
    || die "creating the discovery ClusterRoleBinding failed: $out"

  # The apiserver creates default, kube-system, kube-public and
  # kube-node-lease itself, shortly after start; wait for them.
  local deadline=$((SECONDS + TIMEOUT)) ns
  for ns in default kube-system kube-public kube-node-lease; do
    until api GET "/api/v1/namespaces/$ns" 2>/dev/null | grep -q '"phase": *"Active"'; do
      ((SECONDS < deadline)) || die "namespace $ns did not appear"
      sleep 0.2
    done
  done
  # Wait until the anonymous discovery endpoint is readable (the RBAC
  # authorizer's cache picks the binding up asynchronously).
  until curl -sS --max-time 5 --cacert "$CP_DIR/certs/apiserver.crt" \
      -o /dev/null -w '%{http_code}' "$APISERVER_URL/openid/v1/jwks" 2>/dev/null | grep -q '^200$'; do
    ((SECONDS < deadline)) || die "/openid/v1/jwks not readable anonymously"
    sleep 0.2
  done

  (umask 077
    cat >"$CP_DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ssw
  cluster:
    server: $APISERVER_URL
    certificate-authority: $CP_DIR/certs/apiserver.crt
users:
- name: ssw-admin
  user:
    token: $ADMIN_TOKEN
contexts:
- name: ssw
  context:
    cluster: ssw
    user: ssw-admin
    namespace: default
current-context: ssw
EOF
    cat >"$CP_DIR/env" <<EOF
export KUBECONFIG='$CP_DIR/kubeconfig'
export SSW_APISERVER_URL='$APISERVER_URL'
export SSW_ADMIN_TOKEN='$ADMIN_TOKEN'
export SSW_CP_DIR='$CP_DIR'
EOF
    cmd_env >>"$CP_DIR/env")
  if [[ $node == node ]]; then
    node_up
    echo "export SSW_NODE_IP='$NODE_IP'" >>"$CP_DIR/env"
  fi
  trap - EXIT
  log "up: $APISERVER_URL (etcd pid $(<"$CP_DIR/etcd.pid"), kube-apiserver pid $(<"$CP_DIR/kube-apiserver.pid")); . $CP_DIR/env"
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  case $cmd in
    build) cmd_build ;;
    promtool) cmd_promtool ;;
    env) cmd_env ;;
    up) cmd_up "${1:-}" ;;
    up-node) cmd_up "${1:-}" node ;;
    load-image)
      [[ $# == 2 ]] || usage
      CP_DIR="$(cd "$1" && pwd)"
      node_load_image "$2"
      ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    -h | --help | help) usage 0 ;;
    *) usage ;;
  esac
}

# shellcheck source=hack/node.sh
. "$HACK_DIR/node.sh"

main "$@"
