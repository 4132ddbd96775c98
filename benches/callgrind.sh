#!/bin/sh
# Instructions per document of the compiled engine (issue 16), counted with callgrind:
# for each workload, runs `count-instructions` (crates/rolegate/examples/) at K1 and K2 passes
# over the committed document sample and prints
#   (instructions(K2) - instructions(K1)) / (documents * (K2 - K1))
# so that loading, compiling and preparing (the same in both runs) cancel out. Instruction
# counts do not depend on the machine's load, unlike wall-clock times.
#
#   benches/callgrind.sh                  # every workload, K1=1 K2=6
#   K1=2 K2=12 benches/callgrind.sh w1:decision
set -eu
cd "$(dirname "$0")/.."
K1=${K1:-1}
K2=${K2:-6}
cargo build --quiet --profile bench -p rolegate --example count-instructions
bin=target/release/examples/count-instructions
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # workload metric K -> total instructions
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" "$1" "$2" "$3" \
    >"$out/stdout" 2>"$out/stderr" || { cat "$out/stderr" >&2; exit 1; }
  sed -n 's/^documents=\([0-9]*\).*/\1/p' "$out/stdout" >"$out/docs"
  sed -n 's/^summary: *//p' "$out/cg"
}
if [ $# -eq 0 ]; then
  set -- w1:decision w1:redact w2-20:decision w2-20:redact w2-100:decision w2-100:redact
fi
printf '%-18s %14s\n' workload instr/doc
for spec in "$@"; do
  w=${spec%%:*}
  m=${spec#*:}
  a=$(count "$w" "$m" "$K1")
  b=$(count "$w" "$m" "$K2")
  n=$(cat "$out/docs")
  echo "$w $m $a $b $n" | awk -v k1="$K1" -v k2="$K2" \
    '{ printf "%-18s %14.1f\n", $1 ":" $2, ($4 - $3) / ($5 * (k2 - k1)) }'
done
