#!/usr/bin/env bash
# The load test of `rolegate serve` (issue 14), on loopback, with wrk. A measurement, not a
# test: CI does not run it.
#
#   crates/rolegate-serve/benches/load.sh            # build, seed, load, print the table
#   DURATION=15s CONNECTIONS=16 NO_BUILD=1 crates/rolegate-serve/benches/load.sh
#
# Needs wrk, curl and jq (Debian: apt-get install wrk curl jq). Steps:
#  1. builds the release binary (skipped with NO_BUILD=1);
#  2. copies examples/tasks-app into a temporary folder with custom user data enabled
#     (taskboard.users) and starts `rolegate serve` on 127.0.0.1 (a free port) with a new store;
#  3. registers and logs in two users over HTTP (curl), gives `load` the custom data
#     {team: "platform"} and seeds 200 tasks with insertMany as each user: the layout of
#     benches/direct.rs's `seed` (20 of them visible to `load` through three roles, one of
#     which redacts; 180 withheld, filtered or not matched);
#  4. checks one response of each operation by curl (the find returns 20 documents, 14 of them
#     whole; the update matches and modifies 1);
#  5. runs wrk (THREADS threads, DURATION, load.lua) for the find and for an updateOne
#     ($inc on one of load's tasks), at 1 connection and at CONNECTIONS connections; fails on
#     any non-2xx response or socket error, and checks afterwards that no increment was lost;
#  6. prints one Markdown row per run (requests/s, p50, p99, the server's CPU use) and stops
#     the server. The server's log (one line per request, RUST_LOG=info by default) goes to a
#     file in the temporary folder, as a deployment would write it.
#
# The baseline without HTTP: cargo bench -p rolegate-serve --bench direct. Figures and the
# machine: benches/RESULTS.md next to this script.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-1}
APP_ID=taskboard-ab1cd

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
for tool in wrk curl jq; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool is needed" >&2; exit 2; }
done

if [[ -z ${NO_BUILD:-} ]]; then
  (cd "$root" && cargo build --release -p rolegate-cli)
fi
bin=$root/target/release/rolegate

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cp -r "$root/examples/tasks-app" "$work/app"
cat >"$work/app/auth/custom_user_data.json" <<'EOF'
{"enabled": true, "mongo_service_name": "mongodb-atlas", "database_name": "taskboard",
 "collection_name": "users", "user_id_field": "user_id"}
EOF

RUST_LOG=${RUST_LOG:-info} "$bin" serve "$work/app" --store "$work/data" \
  --listen 127.0.0.1:0 --access-token-seconds 86400 2>"$work/server.log" &
server_pid=$!
addr=
for _ in $(seq 100); do
  addr=$(grep -o 'listen=[0-9.]*:[0-9]*' "$work/server.log" | head -n1 | cut -d= -f2 || true)
  [[ -n $addr ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n $addr ]] || { echo "load.sh: the server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
base=http://$addr/api/client/v2.0/app/$APP_ID
call_url=$base/functions/call

# POST $2 (JSON) to $1 with the bearer token $3 (may be empty); prints the body; fails unless 200.
post() {
  local out status
  out=$work/response.json
  local -a auth=()
  [[ -n ${3:-} ]] && auth=(-H "Authorization: Bearer $3")
  status=$(curl -sS -o "$out" -w '%{http_code}' -H 'Content-Type: application/json' \
    "${auth[@]}" --data-binary "$2" "$1")
  if [[ $status != 200 && $status != 201 ]]; then
    echo "load.sh: POST $1 answered $status: $(cat "$out")" >&2
    exit 1
  fi
  cat "$out"
}

# Registers and logs in $1; prints "user_id access_token".
login() {
  local creds
  creds=$(jq -cn --arg e "$1@example.com" '{email: $e, password: "a load password"}')
  post "$base/auth/providers/local-userpass/register" "$creds" >/dev/null
  post "$base/auth/providers/local-userpass/login" \
    "$(jq -c '{username: .email, password}' <<<"$creds")" | jq -r '"\(.user_id) \(.access_token)"'
}

# A functions/call body: $1 the action, $2 the collection, $3 its arguments (JSON).
body() {
  jq -cn --arg name "$1" --arg coll "$2" --argjson args "$3" \
    '{name: $name, service: "mongodb-atlas",
      arguments: [{database: "taskboard", collection: $coll} + $args]}'
}

read -r load_id load_token < <(login load)
read -r other_id other_token < <(login other)

# The layout of benches/direct.rs's `seed` (a jq program: `$` is jq's).
# shellcheck disable=SC2016
tasks='
  def pad: tostring | ("00" + .) | .[-3:];
  def task($owner; $n; $status; $team; $collab):
    {owner_id: $owner, title: "\($owner) task \($n | pad)", status: $status, team: $team,
     collaborators: $collab,
     details: {summary: "Summary of task \($n)", estimateHours: 3,
               internalNotes: "Not for the team."},
     archived: false};
  def parity($n): if $n % 2 == 0 then "todo" else "doing" end;
  def mine: [range(14) as $n
    | if $n < 8 then task($l; $n; parity($n); "platform"; [])
      elif $n < 11 then task($l; $n; "todo"; "platform"; []) + {archived: true}
      else task($l; $n; "done"; "platform"; []) end];
  def theirs: [range(186) as $n
    | if $n < 6 then task($o; $n; parity($n); "design"; [$l])
      elif $n < 12 then task($o; $n; parity($n); "platform"; [])
      elif $n < 182 then task($o; $n; parity($n); "design"; [])
      else task($o; $n; "done"; "platform"; []) end];
  {documents: (if $who == "load" then mine else theirs end)}'
post "$call_url" "$(body insertOne users \
  "$(jq -cn --arg l "$load_id" '{document: {owner_id: $l, user_id: $l, team: "platform"}}')")" \
  "$load_token" >/dev/null
inserted=$(post "$call_url" "$(body insertMany tasks \
  "$(jq -cn --arg l "$load_id" --arg o "$other_id" --arg who load "$tasks")")" "$load_token")
post "$call_url" "$(body insertMany tasks \
  "$(jq -cn --arg l "$load_id" --arg o "$other_id" --arg who other "$tasks")")" \
  "$other_token" >/dev/null
target=$(jq -c '.insertedIds[0]' <<<"$inserted")

# shellcheck disable=SC2016
body "find" tasks '{"query": {"status": {"$in": ["todo", "doing"]}}, "sort": {"title": 1}}' \
  >"$work/find.json"
body "updateOne" tasks "$(jq -cn --argjson id "$target" \
  '{query: {_id: $id}, update: {"$inc": {"details.estimateHours": 1}}}')" >"$work/update.json"
read_hours() {
  post "$call_url" "$(body findOne tasks "$(jq -cn --argjson id "$target" '{query: {_id: $id}}')")" \
    "$load_token" | jq -r '.details.estimateHours | if type == "object" then .["$numberInt"] else . end'
}

# One response of each, checked.
found=$(post "$call_url" "$(cat "$work/find.json")" "$load_token")
if [[ $(jq 'length' <<<"$found") != 20 || $(jq '[.[] | select(has("owner_id"))] | length' <<<"$found") != 14 ]]; then
  echo "load.sh: the find did not return the 20 expected documents: $found" >&2
  exit 1
fi
updated=$(post "$call_url" "$(cat "$work/update.json")" "$load_token")
if [[ $(jq -c '[.matchedCount, .modifiedCount] | map(if type == "object" then .["$numberInt"] | tonumber else . end)' <<<"$updated") != '[1,1]' ]]; then
  echo "load.sh: the update did not match and modify one document: $updated" >&2
  exit 1
fi

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }

# wrk on $1 (find|update) with $2 connections; prints a Markdown row, fails on any error.
load() {
  local op=$1 conns=$2 before after hours_before hours_after line
  [[ $op == update ]] && hours_before=$(read_hours)
  before=$(cpu_ticks)
  line=$(LOAD_BODY_FILE=$work/$op.json LOAD_TOKEN=$load_token \
    wrk -t"$THREADS" -c"$conns" -d"$DURATION" --latency -s "$here/load.lua" "$call_url" \
    | tee "$work/wrk-$op-$conns.txt" | grep '^LOADRESULT ' | cut -d' ' -f2-)
  after=$(cpu_ticks)
  if [[ -z $line ]]; then
    echo "load.sh: wrk printed no result" >&2; cat "$work/wrk-$op-$conns.txt" >&2; exit 1
  fi
  if [[ $(jq '.connect + .read + .write + .status + .timeout' <<<"$line") != 0 ]]; then
    echo "load.sh: errors under load ($op, $conns connections): $line" >&2
    tail -n 20 "$work/server.log" >&2
    exit 1
  fi
  if [[ $op == update ]]; then
    # Every counted response is an applied increment; responses in flight when wrk stopped
    # may add at most one per connection.
    hours_after=$(read_hours)
    jq -e --argjson d "$((hours_after - hours_before))" --argjson c "$conns" \
      '.requests <= $d and $d <= .requests + $c' <<<"$line" >/dev/null || {
      echo "load.sh: $((hours_after - hours_before)) increments applied for $line" >&2; exit 1; }
  fi
  jq -r --arg op "$op" --argjson conns "$conns" --argjson cpu "$((after - before))" \
    --argjson tck "$ticks" '
    def ms: . / 1000 | (. * 100 | round) / 100 | tostring + " ms";
    (.duration_us / 1e6) as $s
    | "| \($op) | \($conns) | \(.requests / $s | round) | \(.p50_us | ms) | \(.p99_us | ms) | \($cpu / $tck / $s * 100 | round / 100) |"' \
    <<<"$line"
}

echo "server: $addr, wrk: $THREADS thread(s), $DURATION per run; $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm-up (not reported).
LOAD_BODY_FILE=$work/find.json LOAD_TOKEN=$load_token \
  wrk -t1 -c"$CONNECTIONS" -d2s -s "$here/load.lua" "$call_url" >/dev/null
echo "| operation | connections | requests/s | p50 | p99 | server CPU (cores) |"
echo "| --- | --- | --- | --- | --- | --- |"
for op in find update; do
  for conns in 1 "$CONNECTIONS"; do
    load "$op" "$conns"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
