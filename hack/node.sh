# shellcheck shell=bash
# The test bed's node: containerd + kubelet + kube-controller-manager +
# kube-scheduler beside the control plane of hack/control-plane.sh. Sourced by
# hack/control-plane.sh (subcommands `up-node`, `down`, `load-image`); not run
# on its own.
#
# Network rule: traffic goes only to loopback or to addresses inside network
# namespaces the test bed made itself. The node's address is NODE_IP on a
# bridge the test bed creates (one /24 per node, chosen so that it overlaps no
# existing route); pods get addresses on that bridge and no default route, so
# nothing a pod sends can leave the machine. The host is reachable from pods
# at NODE_IP: the API server through a forwarder (NODE_IP:PORT ->
# 127.0.0.1:PORT; the API server's certificate names NODE_IP through
# --advertise-address), and anything a test binds there (the ARM simulator).
#
# Left behind on the machine while a node runs, and removed by `down`:
# processes (kubelet, containerd and its shims, the pods' processes, the
# forwarder, kube-controller-manager, kube-scheduler), mounts under DIR/node,
# the bridge and the pods' veths, the pods' network namespaces (bind-mounted
# under DIR/node), the cgroup subtree /ssw-node-N, kubelet's symlinks in
# /var/log/containers, and the kernel tunables kubelet sets (restored).

NODE_SUBNET_PREFIX=10.213
PAUSE_VERSION=ssw-1
PAUSE_IMAGE="localhost/scaleset-watch/pause:$PAUSE_VERSION"
PAUSE_TAR="$CACHE_DIR/images/pause-$PAUSE_VERSION.tar"
BUILDAH_ROOT="$CACHE_DIR/buildah"
# Kernel tunables kubelet sets at start (pkg/kubelet/cm setupKernelTunables).
NODE_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

# Debian packages the node needs; installed when a command is missing (CI
# machines start without them).
node_packages() {
  local missing=() pair
  for pair in containerd:containerd runc:runc ctr:containerd buildah:buildah socat:socat \
    gcc:gcc musl-gcc:musl-tools ip:iproute2 /usr/lib/cni/bridge:containernetworking-plugins \
    /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev; do
    local what=${pair%%:*} pkg=${pair#*:}
    if [[ $what == /* ]]; then [[ -e $what ]] && continue; else command -v "$what" >/dev/null && continue; fi
    [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  command -v apt-get >/dev/null || die "apt-get not found; install: ${missing[*]}"
  (export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null) \
    || die "apt-get install ${missing[*]} failed"
}

buildah_() {
  buildah --root "$BUILDAH_ROOT/root" --runroot "$BUILDAH_ROOT/runroot" --storage-driver vfs "$@"
}

# The sandbox image: a static pause binary on an empty base, built once.
build_pause_image() {
  [[ -s $PAUSE_TAR ]] && return 0
  local tmp
  tmp=$(mktemp -d)
  gcc -static -Os -s -o "$tmp/pause" "$HACK_DIR/node/pause.c" || die "compiling pause.c failed"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$tmp/Containerfile"
  mkdir -p "$(dirname "$PAUSE_TAR")"
  buildah_ bud -q -t "$PAUSE_IMAGE" "$tmp" >/dev/null || die "buildah bud (pause) failed"
  rm -f "$PAUSE_TAR.tmp"
  buildah_ push -q "$PAUSE_IMAGE" "docker-archive:$PAUSE_TAR.tmp:$PAUSE_IMAGE" >/dev/null \
    || die "buildah push (pause) failed"
  mv -f "$PAUSE_TAR.tmp" "$PAUSE_TAR"
  rm -rf "$tmp"
}

# --- state of one node -----------------------------------------------------

node_load() { # sets NODE_DIR and, if the node got that far, its net.env
  NODE_DIR="$CP_DIR/node"
  NODE_N="" NODE_IP="" NODE_BRIDGE="" NODE_CGROUP=""
  # shellcheck disable=SC1091
  [[ -s $NODE_DIR/net.env ]] && . "$NODE_DIR/net.env"
  NODE_SOCK="$NODE_DIR/containerd.sock"
}

ctr_() { ctr --address "$NODE_SOCK" -n k8s.io "$@"; }

# Picks the first 10.213.N.0/24 that no route and no interface uses, and
# creates the node's bridge with NODE_IP = .1. Serialised across test beds.
node_net_up() {
  node_load
  mkdir -p "$NODE_DIR"
  exec 8>"$CACHE_DIR/node-net.lock"
  flock 8
  local n routes
  routes=$(ip -4 route show table all 2>/dev/null; ip -4 -o addr show 2>/dev/null)
  for ((n = 0; n < 256; n++)); do
    grep -q "$NODE_SUBNET_PREFIX\.$n\." <<<"$routes" && continue
    ip link show "sswbr$n" >/dev/null 2>&1 && continue
    break
  done
  ((n < 256)) || die "no free $NODE_SUBNET_PREFIX.N.0/24 for the node's bridge"
  NODE_N=$n NODE_IP="$NODE_SUBNET_PREFIX.$n.1" NODE_BRIDGE="sswbr$n" NODE_CGROUP="/ssw-node-$n"
  cat >"$NODE_DIR/net.env" <<EOF
NODE_N=$NODE_N
NODE_IP=$NODE_IP
NODE_BRIDGE=$NODE_BRIDGE
NODE_CGROUP=$NODE_CGROUP
EOF
  ip link add "$NODE_BRIDGE" type bridge || die "cannot create bridge $NODE_BRIDGE"
  ip addr add "$NODE_IP/24" dev "$NODE_BRIDGE" || die "cannot address $NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up || die "cannot bring $NODE_BRIDGE up"
  exec 8>&-
}

node_cgroups_up() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -e $h/cgroup.procs ]] || continue
    mkdir -p "$h${NODE_CGROUP#/}" || die "cannot create cgroup $h${NODE_CGROUP#/}"
    if [[ -e $h/cpuset.cpus ]]; then # cgroup v1 cpuset starts empty
      cat "$h/cpuset.cpus" >"$h${NODE_CGROUP#/}/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h${NODE_CGROUP#/}/cpuset.mems"
    fi
  done
}

node_write_configs() {
  mkdir -p "$NODE_DIR"/{cni,cni-ipam,containerd,runc,kubelet,pod-logs}
  cat >"$NODE_DIR/containerd.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$NODE_SOCK"
[ttrpc]
  address = "$NODE_DIR/containerd-ttrpc.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # These machines lack CAP_SYS_RESOURCE: without this runc fails with
  # "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  disable_apparmor = true
  # Pods' network namespaces under DIR, so teardown finds exactly ours.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$NODE_DIR/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni"
EOF
  # No gateway, no masquerading, no default route in pods: only the bridge's
  # /24 is reachable from a pod.
  cat >"$NODE_DIR/cni/10-ssw.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "ssw-node-$NODE_N",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE_DIR/cni-ipam",
        "ranges": [[{"subnet": "$NODE_SUBNET_PREFIX.$NODE_N.0/24",
          "rangeStart": "$NODE_SUBNET_PREFIX.$NODE_N.10",
          "rangeEnd": "$NODE_SUBNET_PREFIX.$NODE_N.250"}]]
      }
    }
  ]
}
EOF
  cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Only on the node's bridge address, never on all interfaces.
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: $NODE_IP
healthzPort: 10248
# Test bed only: the API server reaches kubelet (logs, exec) without client
# certificates.
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
cgroupRoot: $NODE_CGROUP
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://$NODE_SOCK
podLogsDir: $NODE_DIR/pod-logs
serializeImagePulls: false
shutdownGracePeriod: 0s
# Absolute floors: the machines' shared disks run nearly full (1% of a large disk is more
# than is often free), and a bed that evicts its only pods tests nothing.
evictionHard:
  memory.available: 50Mi
  nodefs.available: 64Mi
  nodefs.inodesFree: 1%
  imagefs.available: 64Mi
evictionPressureTransitionPeriod: 10s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
}

node_wait() { # $1=what $2=timeout seconds, rest=command that succeeds when ready
  local what=$1 t=$2; shift 2
  local deadline=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    node_check_alive
    ((SECONDS < deadline)) || { node_tail_logs; die "$what not ready after ${t}s"; }
    sleep 0.3
  done
}

node_check_alive() {
  local p
  for p in socat:forwarder containerd:containerd kubelet:kubelet \
    kube-controller-manager:kube-controller-manager kube-scheduler:kube-scheduler; do
    local bin=${p%%:*} name=${p#*:}
    [[ -e $NODE_DIR/$name.pid ]] || continue
    pid_alive "$NODE_DIR/$name.pid" "$bin" || { node_tail_logs; die "$name exited"; }
  done
}

node_tail_logs() {
  tail_logs "$NODE_DIR"/{forwarder,containerd,kubelet,kube-controller-manager,kube-scheduler}.log
}

node_kubectl() { kubectl --kubeconfig "$CP_DIR/kubeconfig" "$@"; }

# Starts the node after the control plane is up (called by `up-node`).
node_up() {
  node_load
  [[ -n $NODE_IP ]] || die "node network not set up in $NODE_DIR"
  local api_port=${APISERVER_URL##*:}
  node_cgroups_up
  node_write_configs
  build_pause_image

  # Kernel tunables kubelet will change, to put back on `down`.
  if [[ ! -s $NODE_DIR/sysctl.orig ]]; then
    local s
    for s in "${NODE_SYSCTLS[@]}"; do echo "$s $(<"/proc/sys/$s")"; done >"$NODE_DIR/sysctl.orig"
  fi

  start_detached "$NODE_DIR/forwarder.pid" "$NODE_DIR/forwarder.log" socat \
    "TCP-LISTEN:$api_port,bind=$NODE_IP,fork,reuseaddr" "TCP:127.0.0.1:$api_port"

  start_detached "$NODE_DIR/containerd.pid" "$NODE_DIR/containerd.log" containerd \
    --config "$NODE_DIR/containerd.toml"
  node_wait containerd 60 ctr_ version
  ctr_ images import "$PAUSE_TAR" >/dev/null || die "importing the pause image failed"

  local common=(--kubeconfig="$CP_DIR/kubeconfig" --v=1)
  start_detached "$NODE_DIR/kube-controller-manager.pid" "$NODE_DIR/kube-controller-manager.log" \
    "$KCM_BIN" "${common[@]}" \
    --leader-elect=false \
    --secure-port=0 \
    --use-service-account-credentials=false \
    --service-account-private-key-file="$CP_DIR/sa.key" \
    --root-ca-file="$CP_DIR/certs/apiserver.crt" \
    --controllers='*' \
    --concurrent-deployment-syncs=2 --concurrent-replicaset-syncs=2
  start_detached "$NODE_DIR/kube-scheduler.pid" "$NODE_DIR/kube-scheduler.log" \
    "$KUBE_SCHEDULER_BIN" "${common[@]}" --leader-elect=false --secure-port=0
  start_detached "$NODE_DIR/kubelet.pid" "$NODE_DIR/kubelet.log" \
    "$KUBELET_BIN" "${common[@]}" \
    --config="$NODE_DIR/kubelet.yaml" \
    --root-dir="$NODE_DIR/kubelet" \
    --hostname-override=ssw-node \
    --node-ip="$NODE_IP" \
    --oom-score-adj=0

  node_wait "node ssw-node" "$TIMEOUT" node_ready
  node_wait "ServiceAccount default/default" "$TIMEOUT" node_kubectl get serviceaccount default -n default
  node_wait "ConfigMap default/kube-root-ca.crt" "$TIMEOUT" node_kubectl get configmap kube-root-ca.crt -n default
}

node_ready() {
  [[ $(node_kubectl get node ssw-node -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

# Pids of every process in the node's cgroup subtree (the pods' processes).
node_cgroup_pids() {
  [[ -n $NODE_CGROUP ]] || return 0
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -d $h${NODE_CGROUP#/} ]] || continue
    find "$h${NODE_CGROUP#/}" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -u
}

# Stops everything `node_up` started and removes what it left on the machine.
# Idempotent; never fails.
node_down() {
  node_load
  [[ -d $NODE_DIR ]] || return 0
  local i pid
  stop_pidfile "$NODE_DIR/kubelet.pid" kubelet
  stop_pidfile "$NODE_DIR/kube-scheduler.pid" kube-scheduler
  stop_pidfile "$NODE_DIR/kube-controller-manager.pid" kube-controller-manager

  # Containers through containerd, so that it reaps their shims.
  if pid_alive "$NODE_DIR/containerd.pid" containerd; then
    local id
    for id in $(ctr_ tasks ls -q 2>/dev/null); do
      timeout 20 ctr_ tasks rm -f "$id" >/dev/null 2>&1 || true
    done
  fi
  # Whatever is still in the node's cgroups is a pod's process.
  for ((i = 0; i < 50; i++)); do
    local pids
    pids=$(node_cgroup_pids)
    [[ -z $pids ]] && break
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  stop_pidfile "$NODE_DIR/containerd.pid" containerd
  # Shims of this containerd (their command line names its socket).
  for pid in $(pgrep -f -- "-address $NODE_SOCK( |\$)" 2>/dev/null || true); do
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == *containerd-shim* ]] && kill -KILL "$pid" 2>/dev/null
  done
  stop_pidfile "$NODE_DIR/forwarder.pid" socat

  # Mounts under DIR/node (pods' volumes, rootfs, shm, network namespaces),
  # deepest first.
  local m
  for ((i = 0; i < 5; i++)); do
    local mounts
    mounts=$(awk -v d="$NODE_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
    [[ -z $mounts ]] && break
    while IFS= read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done <<<"$mounts"
  done

  if [[ -n $NODE_BRIDGE ]] && ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    local veth
    for veth in $(ip -o link show master "$NODE_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
      ip link del "$veth" 2>/dev/null || true
    done
    ip link del "$NODE_BRIDGE" 2>/dev/null || true
  fi

  if [[ -n $NODE_CGROUP ]]; then
    local h
    for h in /sys/fs/cgroup/*/; do
      [[ -d $h${NODE_CGROUP#/} ]] || continue
      find "$h${NODE_CGROUP#/}" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  fi

  local link
  for link in /var/log/containers/*.log; do
    [[ -L $link && $(readlink "$link") == "$NODE_DIR/"* ]] && rm -f "$link"
  done

  if [[ -s $NODE_DIR/sysctl.orig ]]; then
    local key val
    while read -r key val; do
      [[ $(<"/proc/sys/$key") == "$val" ]] || echo "$val" >"/proc/sys/$key" 2>/dev/null || true
    done <"$NODE_DIR/sysctl.orig"
    rm -f "$NODE_DIR/sysctl.orig"
  fi
  # Container state (overlay snapshots) is large and useless once stopped.
  rm -rf "$NODE_DIR/containerd" "$NODE_DIR/runc" "$NODE_DIR/kubelet/pods" 2>/dev/null || true
  return 0
}

# Imports an image archive (docker-archive, as `buildah push` writes) into
# the node's containerd.
node_load_image() {
  node_load
  pid_alive "$NODE_DIR/containerd.pid" containerd || die "no node running in $CP_DIR"
  ctr_ images import "$1" >/dev/null || die "importing $1 failed"
}
