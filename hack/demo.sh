#!/usr/bin/env bash
# The demo: a local Kubernetes control plane, the ARM simulator with a sample fleet, the
# controller reconciling examples/*.yaml, and `kubectl get ssw` as the demo breaks and heals an
# instance. Builds whatever is missing first (the first run compiles kube-apiserver, etcd and
# helm: about 15 minutes; later runs start in seconds).
#
#   hack/demo.sh            run the demo, then tear everything down
#   DEMO_KEEP=1 hack/demo.sh  leave it all running until Ctrl-C, to explore with kubectl
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Building scaleset-watch"
cargo build --quiet
bin=$root/target/debug/scaleset-watch

say "Building (or reusing) kube-apiserver, etcd and helm"
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

say "Starting etcd and kube-apiserver"
hack/control-plane.sh up "$work/cp" {lifeline}>&-
# shellcheck disable=SC1091
. "$work/cp/env"

say "Starting the ARM simulator with examples/simulator/fleet.yaml"
"$bin" simulate --scenario examples/simulator/fleet.yaml --listen 127.0.0.1:0 \
  --ca-out "$work/sim-ca.pem" --url-out "$work/sim-url" >"$work/simulator.log" 2>&1 {lifeline}>&- &
pids+=($!)
echo $! >>"$work/pids"
for _ in $(seq 100); do [ -s "$work/sim-url" ] && break; sleep 0.1; done
sim=$(cat "$work/sim-url")
echo "simulator at $sim"

say "Installing the chart (CRD, ServiceAccount, least-privilege RBAC)"
helm install scaleset-watch charts/scaleset-watch -n scaleset-watch --create-namespace \
  --set azure.identity.mode=managed --wait=false >/dev/null
kubectl get crd scalesetwatches.scalesetwatch.io

say "Running the controller as the chart's ServiceAccount (a TokenRequest token; no kubelet here)"
token=$(kubectl create token scaleset-watch -n scaleset-watch --duration 1h)
cp "$work/cp/kubeconfig" "$work/controller.kubeconfig"
KUBECONFIG=$work/controller.kubeconfig kubectl config set-credentials sa --token="$token" >/dev/null
KUBECONFIG=$work/controller.kubeconfig kubectl config set-context --current --user=sa >/dev/null
KUBECONFIG=$work/controller.kubeconfig \
  SSW_ARM_ENDPOINT=$sim AZURE_AUTHORITY_HOST=$sim SSW_CA_FILE=$work/sim-ca.pem \
  AZURE_TENANT_ID=0d3f2a1b-5c6e-4f70-8a9b-1c2d3e4f5a6b \
  AZURE_CLIENT_ID=8e1b2c3d-4a5f-4b6c-9d7e-0f1a2b3c4d5e \
  AZURE_CLIENT_SECRET=demo-secret \
  SSW_HTTP_ADDR=127.0.0.1:0 \
  "$bin" run >"$work/controller.log" 2>&1 {lifeline}>&- &
pids+=($!)
echo $! >>"$work/pids"

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
  for _ in $(seq 30); do
    [ "$(kubectl get ssw web -o jsonpath='{.status.summary}')" = "$2" ] && break
    sleep 1
  done
  kubectl get ssw -o wide
}

say "Waiting for the first polls"
for _ in $(seq 60); do
  n=$(kubectl get ssw -o jsonpath='{range .items[*]}{.status.summary}{"\n"}{end}' | grep -c / || true)
  [ "$n" -ge 3 ] && break
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
  echo "Controller log: $work/controller.log   Simulator admin API: $sim/_sim/requests"
  echo "Ctrl-C to stop."
  wait "${pids[@]}"
fi
say "Done"
