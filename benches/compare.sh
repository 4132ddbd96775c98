#!/bin/sh
# Wall-clock before and after (issue 16): criterion medians of the compiled engine's per-document
# benches (`evaluate/{w1,w2-20,w2-100}/{decision,redact_raw}/compiled`) in this tree and in
# BASELINE, another checkout of the repository:
#
#   git worktree add ../baseline 7c8e1ef
#   benches/compare.sh ../baseline            # 3 rounds
#   benches/compare.sh ../baseline 5          # 5 rounds
#
# Builds the `evaluate` bench in both trees, then runs the two binaries in turn, ROUNDS times
# (interleaved, so that the load of a shared machine falls on both alike), and prints per bench
# the median over the rounds of criterion's median time per document, the ratio baseline /
# this tree, and the documents per second it means. Instruction counts, which do not move with
# the load: `benches/callgrind.sh` (run it in both trees).
set -eu
cd "$(dirname "$0")/.."
here=$(pwd)
base=$(cd "${1:?usage: benches/compare.sh BASELINE_DIR [ROUNDS]}" && pwd)
rounds=${2:-3}
filter='evaluate/w(1|2-20|2-100)/(decision|redact_raw)/compiled'
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

bench_binary() { # tree -> path of its freshly built `evaluate` bench binary
  (cd "$1" && cargo bench --quiet -p rolegate --bench evaluate --no-run --message-format=json) |
    sed -n 's/.*"executable":"\([^"]*\/evaluate-[^"]*\)".*/\1/p' | tail -n 1
}
base_bin=$(bench_binary "$base")
here_bin=$(bench_binary "$here")

# One criterion run of `bin` (from tree `dir`) into `home`; appends "tree bench ns/doc" lines.
run() { # tree-name dir bin home
  (cd "$2/crates/rolegate" &&
    CRITERION_HOME="$4" "$3" --bench "$filter" --warm-up-time 2 --measurement-time 5 \
      >/dev/null 2>&1)
  find "$4" -path '*/new/estimates.json' | sort | while read -r est; do
    id=${est#"$4"/}
    id=${id%/new/estimates.json}
    per_iter=$(sed 's/.*"median":{[^}]*}[^}]*"point_estimate":\([0-9.e+-]*\).*/\1/' "$est")
    docs=$(sed 's/.*"Elements":\([0-9]*\).*/\1/' "${est%estimates.json}benchmark.json")
    echo "$1 $id $per_iter $docs" | awk '{ printf "%s %s %.3f\n", $1, $2, $3 / $4 }'
  done >>"$out/times"
}

i=1
while [ "$i" -le "$rounds" ]; do
  run baseline "$base" "$base_bin" "$out/base-$i"
  run this "$here" "$here_bin" "$out/this-$i"
  i=$((i + 1))
done

printf '%-36s %14s %14s %8s %14s\n' bench 'baseline ns' 'this tree ns' ratio 'docs/s (this)'
for id in $(awk '{ print $2 }' "$out/times" | sort -u); do
  med() { # tree -> median over the rounds
    awk -v t="$1" -v id="$id" '$1 == t && $2 == id { print $3 }' "$out/times" | sort -g |
      awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
  }
  b=$(med baseline)
  t=$(med this)
  echo "$id $b $t" | awk '{ printf "%-36s %14.1f %14.1f %7.2fx %14.0f\n", $1, $2, $3, $2 / $3, 1e9 / $3 }'
done
