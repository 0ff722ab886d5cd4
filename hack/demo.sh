#!/usr/bin/env bash
# The demo: a local Kubernetes control plane and node, the ARM simulator with a sample fleet,
# the controller installed by the Helm chart as a pod (the image built from ./Dockerfile)
# reconciling examples/*.yaml, and `kubectl get ssw` as the demo breaks and heals an instance.
# Builds whatever is missing first (the first run compiles kube-apiserver, etcd, helm, the
# node's binaries and the image's release binary; later runs start in seconds).
#
#   hack/demo.sh            run the demo, then tear everything down
#   DEMO_KEEP=1 hack/demo.sh  leave it all running until Ctrl-C, to explore with kubectl
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Building the ARM simulator (the controller itself runs from the image)"
cargo build --quiet -p ssw-simulator --bin ssw-simulator
simulator=$root/target/debug/ssw-simulator

say "Building (or reusing) kube-apiserver, etcd, helm, kubelet, kube-controller-manager, kube-scheduler"
hack/control-plane.sh build
eval "$(hack/control-plane.sh env)"

work=$(mktemp -d "${TMPDIR:-/tmp}/ssw-demo.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  hack/control-plane.sh down "$work/cp" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# Exit (running the EXIT trap once) rather than clean up and carry on with the demo.
trap 'exit 130' INT
trap 'exit 143' TERM
# Even a SIGKILLed demo leaves nothing running: this watchdog waits for EOF on a pipe whose
# only write end this shell holds (the long-running children get it closed), and cleans up
# unless the EXIT trap already did. The processes it stops are still running orphans, so their
# pids cannot have been reused.
exec {lifeline}> >(
  trap '' INT TERM HUP
  cat >/dev/null
  [ -d "$work" ] || exit 0
  if [ -f "$work/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null; done <"$work/pids"
  fi
  hack/control-plane.sh down "$work/cp" >/dev/null 2>&1
  rm -rf "$work"
)

say "Building the image from Dockerfile (buildah; the first time compiles the release binary)"
tag="demo-$(date +%s)"
hack/image.sh build "$tag" "$work/image.tar" {lifeline}>&-

say "Starting etcd, kube-apiserver and a node (containerd, kubelet, controller-manager, scheduler)"
hack/control-plane.sh up-node "$work/cp" {lifeline}>&-
# shellcheck disable=SC1091
. "$work/cp/env"
hack/control-plane.sh load-image "$work/cp" "$work/image.tar"
kubectl get nodes -o wide

say "Starting the ARM simulator with examples/simulator/fleet.yaml (on the node's address, for the pod)"
"$simulator" --scenario examples/simulator/fleet.yaml --listen "$SSW_NODE_IP:0" \
  --ca-out "$work/sim-ca.pem" --url-out "$work/sim-url" >"$work/simulator.log" 2>&1 {lifeline}>&- &
pids+=($!)
echo $! >>"$work/pids"
for _ in $(seq 100); do [ -s "$work/sim-url" ] && break; sleep 0.1; done
sim=$(cat "$work/sim-url")
echo "simulator at $sim"

say "Installing the chart: the controller runs as a pod, with the simulator's service principal"
kubectl create namespace scaleset-watch >/dev/null
kubectl label namespace scaleset-watch pod-security.kubernetes.io/enforce=restricted >/dev/null
kubectl create configmap sim-ca -n scaleset-watch --from-file=ca.crt="$work/sim-ca.pem" >/dev/null
kubectl create secret generic azure-sp -n scaleset-watch \
  --from-literal=tenantId=0d3f2a1b-5c6e-4f70-8a9b-1c2d3e4f5a6b \
  --from-literal=clientId=8e1b2c3d-4a5f-4b6c-9d7e-0f1a2b3c4d5e \
  --from-literal=clientSecret=demo-secret >/dev/null
# No kube-proxy here: the pod reaches the API server at the node's address. The examples live in
# `default`, which the admin allows to use the controller's own identity (by default only the
# release namespace may).
helm install scaleset-watch charts/scaleset-watch -n scaleset-watch \
  --set 'ambientCredentials.namespaces={default}' \
  --set image.repository=localhost/scaleset-watch --set image.tag="$tag" \
  --set azure.identity.mode=clientSecret --set azure.identity.existingSecret=azure-sp \
  --set azure.armEndpoint="$sim" --set azure.authorityHost="$sim" \
  --set azure.caBundle.configMap=sim-ca \
  --set extraEnv[0].name=KUBERNETES_SERVICE_HOST --set extraEnv[0].value="$SSW_NODE_IP" \
  --set extraEnv[1].name=KUBERNETES_SERVICE_PORT --set-string extraEnv[1].value="${SSW_APISERVER_URL##*:}" \
  --wait --timeout 120s >/dev/null
kubectl get pods -n scaleset-watch -o wide

say "kubectl apply -f examples/"
kubectl apply -f examples/ 2>&1 | grep -v '^Warning' || true

# Why each unhealthy instance of watch $1 is unhealthy.
reasons() {
  kubectl get ssw "$1" -o jsonpath='{range .status.unhealthyInstances[*]}{.instanceId}{": "}{.reasons}{"\n"}{end}'
}

# Sets web instance 2's Application Health to $1 in the simulator, then waits until the watch
# reports $2 healthy instances.
set_web_2_health() {
  curl -sf --cacert "$work/sim-ca.pem" -X PATCH -H 'content-type: application/json' \
    -d "{\"appHealth\":\"$1\"}" \
    "$sim/_sim/scalesets/00000000-0000-0000-0000-0000000000aa/rg-demo/web/instances/2" >/dev/null
  local i
  for i in $(seq 30); do
    [ "$(kubectl get ssw web -o jsonpath='{.status.summary}')" = "$2" ] && break
    ((i < 30)) || { kubectl get ssw -o wide; echo "demo: web never reported $2 healthy" >&2; exit 1; }
    sleep 1
  done
  kubectl get ssw -o wide
}

say "Waiting for the first polls"
for i in $(seq 60); do
  n=$(kubectl get ssw -o jsonpath='{range .items[*]}{.status.summary}{"\n"}{end}' | grep -c / || true)
  [ "$n" -ge 3 ] && break
  ((i < 60)) || { kubectl get ssw -o wide; echo "demo: not every example watch has polled" >&2; exit 1; }
  sleep 1
done
kubectl get ssw -o wide

say "Why are some workers unhealthy?"
reasons workers

say "Breaking web instance 2 (its Application Health extension now reports unhealthy)"
set_web_2_health unhealthy 4/5
reasons web

say "Healing it"
set_web_2_health healthy 5/5

say "Events: one per transition, not one per poll"
kubectl get events --field-selector involvedObject.kind=ScaleSetWatch \
  -o custom-columns=TYPE:.type,REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message

say "ARM requests the simulator received"
curl -sf --cacert "$work/sim-ca.pem" "$sim/_sim/requests" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({k: v.get("listPages", {}).get("count") for k, v in d["scaleSets"].items()}, indent=1))' 2>/dev/null || true

if [ "${DEMO_KEEP:-}" = 1 ]; then
  say "Still running. In another shell: export KUBECONFIG=$work/cp/kubeconfig; kubectl get ssw -w"
  echo "Controller log: kubectl logs -n scaleset-watch deploy/scaleset-watch   Simulator admin API: $sim/_sim/requests"
  echo "Ctrl-C to stop."
  wait "${pids[@]}"
fi
say "Done"
