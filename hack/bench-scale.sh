#!/usr/bin/env bash
# Fleet-scale benchmark: the release controller against the project's own control plane and
# ARM simulator, at a size given on the command line.
#
#   hack/bench-scale.sh WATCHES SETS      e.g. hack/bench-scale.sh 200 50
#                                               hack/bench-scale.sh 2000 500
#
# It starts etcd + kube-apiserver (hack/control-plane.sh up; the binaries must be built), the
# simulator with a generated scenario (SETS scale sets of BENCH_INSTANCES instances spread
# over BENCH_SUBSCRIPTIONS subscriptions, rate limits enforced), creates WATCHES
# ScaleSetWatches (WATCHES/SETS per set, interval BENCH_INTERVAL), then starts the release
# controller and prints:
#   - convergence: seconds from the controller's start until every watch has a status;
#   - ARM lists (the simulator's count of full listings begun) in the first interval, then
#     per scale set per minute for BENCH_STEADY_MINUTES minutes of steady state: each minute,
#     the mean, the number of sets listed other than once, and the worst minute;
#   - status writes per minute in those minutes, from the API server's own
#     apiserver_request_total (PATCH/APPLY of scalesetwatches/status);
#   - detection: BENCH_FLIPS scale sets get an unhealthy instance at random moments within
#     two intervals; from each flip to its watch's Healthy=False (seen by a kubectl watch),
#     p50 and p95;
#   - the controller's peak RSS (VmHWM) and CPU seconds per minute (steady state and overall).
#
# Environment (defaults): BENCH_INTERVAL (60s), BENCH_INSTANCES (100), BENCH_SUBSCRIPTIONS (5),
# BENCH_STEADY_MINUTES (5), BENCH_FLIPS (20, at most SETS), SSW_STATUS_HEARTBEAT (5m),
# BENCH_CONTROLLER (the controller binary; default the release build of this tree),
# SSW_MAX_CONCURRENT_FETCHES_PER_SUBSCRIPTION (4), BENCH_KEEP=1 keeps the work directory.
#
# Everything it starts dies with it: it runs in a process group of its own, which an EXIT/INT/
# TERM trap kills, and a guard process that outlives even a SIGKILL of this script (it waits
# for a pipe only this script holds open) stops the control plane and kills the group.
set -euo pipefail

if (($# != 2)) || ! [[ $1 =~ ^[1-9][0-9]*$ && $2 =~ ^[1-9][0-9]*$ ]] || (($1 < $2)); then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  echo "usage: $0 WATCHES SETS   (WATCHES >= SETS >= 1)" >&2
  exit 2
fi
# A process group (and session) of our own, so that the cleanup can kill all of it.
if [[ $(ps -o pgid= -p $$ | tr -d ' ') != "$$" ]]; then
  exec setsid "$0" "$@"
fi

watches=$1
sets=$2
interval=${BENCH_INTERVAL:-60s}
instances=${BENCH_INSTANCES:-100}
subs=${BENCH_SUBSCRIPTIONS:-5}
steady_minutes=${BENCH_STEADY_MINUTES:-5}
flips=${BENCH_FLIPS:-20}
((flips > sets)) && flips=$sets
heartbeat=${SSW_STATUS_HEARTBEAT:-5m}
fetch_concurrency=${SSW_MAX_CONCURRENT_FETCHES_PER_SUBSCRIPTION:-4}
interval_s=$(awk -v d="$interval" 'BEGIN {
  if (d ~ /^[0-9]+s$/) print d + 0; else if (d ~ /^[0-9]+m$/) print d * 60; else print -1 }')
((interval_s >= 10)) || { echo "BENCH_INTERVAL must be like 60s or 2m, at least 10s" >&2; exit 2; }

cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/ssw-bench.XXXXXX")
pids=()

cleanup() {
  local rc=$?
  trap - EXIT
  trap '' INT TERM
  ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null
  "$root/hack/control-plane.sh" down "$work/cp" >/dev/null 2>&1 || true
  if [[ ${BENCH_KEEP:-} == 1 ]]; then
    echo "work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
  # Whatever else this group still runs (kubectl watches, flip timers).
  kill -TERM -- -$$ 2>/dev/null || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The guard: blocks on a pipe whose only writer is this script; on EOF (this script ended in
# any way, SIGKILL included) it stops the control plane and kills the group. Long-running
# children are started with the pipe closed ({guard}>&-), or they would keep it open.
exec {guard}> >(
  trap '' INT TERM
  cat >/dev/null
  "$root/hack/control-plane.sh" down "$work/cp" >/dev/null 2>&1 || true
  kill -KILL -- -$$ 2>/dev/null || true
)

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

say "building the release controller"
cargo build --release --quiet -p scaleset-watch -p ssw-simulator
bin=${BENCH_CONTROLLER:-$root/target/release/scaleset-watch}
simulator=$root/target/release/ssw-simulator

say "starting etcd and kube-apiserver"
hack/control-plane.sh up "$work/cp" >"$work/cp-up.log" 2>&1 {guard}>&- || { cat "$work/cp-up.log" >&2; exit 1; }
# shellcheck disable=SC1091
. "$work/cp/env"
kubectl apply --server-side -f crds/ >/dev/null
kubectl create namespace bench >/dev/null

tenant=0d3f2a1b-5c6e-4f70-8a9b-1c2d3e4f5a6b
client=8e1b2c3d-4a5f-4b6c-9d7e-0f1a2b3c4d5e
secret=demo-secret
sub_id() { printf '00000000-0000-0000-0000-%012x' "$((0xb0 + $1))"; }
set_name() { printf 'vmss-%04d' "$1"; }

say "generating the scenario: $sets sets x $instances instances over $subs subscriptions"
{
  echo "rateLimits: {enforce: true}"
  echo "servicePrincipals:"
  printf '  - {tenantId: %s, clientId: %s, clientSecret: %s, subscriptions: [' "$tenant" "$client" "$secret"
  for ((s = 0; s < subs; s++)); do printf '%s%s' "$( ((s)) && echo ', ')" "$(sub_id "$s")"; done
  echo ']}'
  echo "subscriptions:"
  for ((s = 0; s < subs; s++)); do
    printf '  - id: %s\n    tenantId: %s\n    resourceGroups:\n      - name: rg-bench\n        scaleSets:\n' \
      "$(sub_id "$s")" "$tenant"
    for ((i = s; i < sets; i += subs)); do
      printf '          - {name: %s, defaults: {appHealth: healthy, extensions: [{name: HealthExtension, type: Microsoft.ManagedServices.ApplicationHealthLinux, typeHandlerVersion: "1.0"}]}, generate: {count: %d}}\n' \
        "$(set_name "$i")" "$instances"
    done
  done
} >"$work/scenario.yaml"

say "starting the simulator"
"$simulator" --scenario "$work/scenario.yaml" --listen 127.0.0.1:0 \
  --ca-out "$work/sim-ca.pem" --url-out "$work/sim-url" >"$work/simulator.log" 2>&1 {guard}>&- &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/sim-url ]] && break; sleep 0.1; done
sim=$(cat "$work/sim-url")
simcurl() { curl -sf --cacert "$work/sim-ca.pem" "$@"; }

say "creating $watches ScaleSetWatches (interval $interval)"
for ((w = 0; w < watches; w++)); do
  i=$((w % sets))
  printf -- '---\napiVersion: scalesetwatch.io/v1alpha1\nkind: ScaleSetWatch\nmetadata: {name: w-%s-%d, namespace: bench}\nspec: {subscriptionId: %s, resourceGroup: rg-bench, scaleSetName: %s, interval: %s}\n' \
    "$(set_name "$i")" "$((w / sets))" "$(sub_id "$((i % subs))")" "$(set_name "$i")" "$interval"
done >"$work/watches.yaml"
t=$(now)
kubectl create -f "$work/watches.yaml" >/dev/null
say "  created in $(elapsed "$t" "$(now)")s"

# Counters of the simulator (full listings begun, per scale set) and of the API server.
sim_lists() {
  simcurl "$sim/_sim/requests" | jq -c '.scaleSets | with_entries(.value |= .firstPages)'
}
status_writes() {
  curl -sk -H "Authorization: Bearer $SSW_ADMIN_TOKEN" "$SSW_APISERVER_URL/metrics" |
    awk '/^apiserver_request_total\{/ && /resource="scalesetwatches"/ && /subresource="status"/ &&
         (/verb="PATCH"/ || /verb="APPLY"/) { s += $NF } END { printf "%d\n", s }'
}
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$1/stat"
}
with_status() {
  kubectl get ssw -n bench -o json |
    jq '[.items[] | select(.status.lastPollTime != null)] | length'
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
say "starting the controller (heartbeat $heartbeat, $fetch_concurrency fetches per subscription)"
lists0=$(sim_lists)
writes0=$(status_writes)
start=$(now)
KUBECONFIG=$work/cp/kubeconfig SSW_NAMESPACE=bench SSW_HTTP_ADDR=127.0.0.1:$port \
  SSW_ARM_ENDPOINT=$sim AZURE_AUTHORITY_HOST=$sim SSW_CA_FILE=$work/sim-ca.pem \
  AZURE_TENANT_ID=$tenant AZURE_CLIENT_ID=$client AZURE_CLIENT_SECRET=$secret \
  SSW_AMBIENT_NAMESPACES=bench SSW_LOG_LEVEL=warn SSW_STATUS_HEARTBEAT=$heartbeat \
  SSW_MAX_CONCURRENT_FETCHES_PER_SUBSCRIPTION=$fetch_concurrency \
  "$bin" run >"$work/controller.log" 2>&1 {guard}>&- &
controller=$!
pids+=("$controller")

# A watch has a status once it has polled successfully; one that only fails (a setting this
# script got wrong) never will, so give up after two intervals and say why.
converge_by=$(($(date +%s) + 2 * interval_s + 60))
while (($(with_status) < watches)); do
  kill -0 "$controller" 2>/dev/null || { tail -n 30 "$work/controller.log" >&2; exit 1; }
  if (($(date +%s) > converge_by)); then
    say "not every watch has polled successfully; Ready reasons:"
    kubectl get ssw -n bench -o json | jq -c '[.items[] | .status.conditions[]? | select(.type == "Ready")
      | .reason] | group_by(.) | map({(.[0]): length}) | add' >&2
    exit 1
  fi
  sleep 1
done
convergence=$(elapsed "$start" "$(now)")
say "every watch has a status after ${convergence}s"
ready=$(kubectl get ssw -n bench -o json |
  jq '[.items[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length')

# Lists in the first interval, counted from the controller's start.
sleep "$(awk -v s="$start" -v n="$(now)" -v i="$interval_s" 'BEGIN { d = s + i - n; print (d > 0 ? d : 0) }')"
first_interval=$(jq -n --argjson a "$lists0" --argjson b "$(sim_lists)" \
  '[$b | to_entries[] | .value - ($a[.key] // 0)] | add // 0')
first_writes=$(($(status_writes) - writes0))
say "lists in the first interval: $first_interval for $sets sets; $first_writes status writes"

# Steady state starts with the second interval.
say "steady state: $steady_minutes minutes"
per_minute=()
writes_per_minute=()
# Windows of exactly a minute each, from the first sample: sleeping 60s after each sample
# would stretch them by the sampling time, and a stretched window now and then holds two
# fetches of one set (and the next window none).
steady_start=$(now)
prev_lists=$(sim_lists)
prev_writes=$(status_writes)
steady_cpu0=$(cpu_seconds "$controller")
for ((m = 1; m <= steady_minutes; m++)); do
  sleep "$(awk -v s="$steady_start" -v m="$m" -v n="$(now)" 'BEGIN { d = s + 60 * m - n; print (d > 0 ? d : 0) }')"
  cur_lists=$(sim_lists)
  cur_writes=$(status_writes)
  line=$(jq -nr --argjson a "$prev_lists" --argjson b "$cur_lists" --argjson n "$sets" '
    [$b | to_entries[] | .value - ($a[.key] // 0)] as $d
    | ($d | add // 0) as $total
    | (($d | map(select(. != 1)) | length) + ($n - ($d | length))) as $off
    | "\($total / $n) \($total) \($off)"')
  read -r mean total off <<<"$line"
  per_minute+=("$mean")
  writes_per_minute+=("$((cur_writes - prev_writes))")
  say "  minute $m: $total lists = $mean per set ($off sets listed other than once); $((cur_writes - prev_writes)) status writes"
  prev_lists=$cur_lists
  prev_writes=$cur_writes
done
steady_cpu=$(awk -v a="$steady_cpu0" -v b="$(cpu_seconds "$controller")" -v m="$steady_minutes" \
  'BEGIN { printf "%.2f", (b - a) / m }')

say "detection: $flips flips at random moments within $((2 * interval_s))s"
kubectl get ssw -n bench -w --output-watch-events -o json 2>/dev/null {guard}>&- |
  jq -c --unbuffered '[now, .object.metadata.name,
     ((.object.status.conditions // []) | map(select(.type == "Healthy")) | (.[0].status // ""))]' \
    >"$work/watch-events.jsonl" {guard}>&- &
pids+=($!)
sleep 2
: >"$work/flips"
flip_pids=()
for i in $(shuf -i 0-$((sets - 1)) -n "$flips"); do
  (
    sleep "$(awk -v r="$RANDOM" -v w="$((2 * interval_s))" 'BEGIN { printf "%.3f", r / 32768 * w }')"
    at=$(now)
    simcurl -X PATCH -H 'content-type: application/json' -d '{"appHealth":"unhealthy"}' \
      "$sim/_sim/scalesets/$(sub_id "$((i % subs))")/rg-bench/$(set_name "$i")/instances/0" >/dev/null
    echo "$at w-$(set_name "$i")-0" >>"$work/flips"
  ) &
  flip_pids+=($!)
done
# A bare `wait` would wait for the controller too.
((${#flip_pids[@]})) && wait "${flip_pids[@]}"
# Give the last flip an interval and a half to show.
deadline=$(($(date +%s) + interval_s * 3 / 2 + 10))
detected() {
  jq -rs --rawfile flips "$work/flips" '
    ($flips | split("\n") | map(select(length > 0) | split(" ") | {at: (.[0] | tonumber), name: .[1]})) as $f
    | [$f[] as $x | [.[] | select(.[1] == $x.name and .[2] == "False" and .[0] >= $x.at)][0]
       | select(. != null) | .[0] - $x.at]' "$work/watch-events.jsonl"
}
while (($(detected | jq length) < flips)) && (($(date +%s) < deadline)); do sleep 2; done
delays=$(detected)
detection=$(jq -r 'sort as $s | length as $n
  | if $n == 0 then "none detected"
    else "p50 \($s[(($n - 1) * 0.5 | floor)] * 10 | round / 10)s, p95 \($s[(($n - 1) * 0.95 | ceil)] * 10 | round / 10)s, max \($s[-1] * 10 | round / 10)s (\($n) of '"$flips"' flips)"
    end' <<<"$delays")

rss=$(awk '/^VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$controller/status")
total_cpu=$(cpu_seconds "$controller")
minutes_run=$(awk -v s="$start" -v n="$(now)" 'BEGIN { print (n - s) / 60 }')

worst=$(printf '%s\n' "${per_minute[@]}" | awk '{ d = $1 - 1; if (d < 0) d = -d; if (d >= w) { w = d; v = $1 } } END { print v }')
mean=$(printf '%s\n' "${per_minute[@]}" | awk '{ s += $1 } END { printf "%.3f", s / NR }')
writes_mean=$(printf '%s\n' "${writes_per_minute[@]}" | awk '{ s += $1 } END { printf "%.1f", s / NR }')

cat <<EOF

== scaleset-watch at $watches watches over $sets scale sets x $instances instances ($subs subscriptions, interval $interval)
convergence (controller start -> every watch has a status): ${convergence}s ($ready of $watches Ready=True)
ARM lists in the first interval: $first_interval (for $sets sets); status writes: $first_writes
ARM lists per set per minute, steady state ($steady_minutes min): $(printf '%s ' "${per_minute[@]}")
  mean $mean, worst minute $worst
status writes per minute at idle: $(printf '%s ' "${writes_per_minute[@]}")(mean $writes_mean; heartbeat $heartbeat -> at most $watches per heartbeat)
detection (flip -> Healthy=False): $detection
controller peak RSS (VmHWM): $rss
controller CPU: $steady_cpu s per minute in steady state; $(awk -v c="$total_cpu" -v m="$minutes_run" 'BEGIN { printf "%.2f", c / m }') s per minute over the whole run ($total_cpu s in $(awk -v m="$minutes_run" 'BEGIN { printf "%.1f", m }') min)
EOF
