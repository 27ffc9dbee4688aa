#!/bin/bash
# Delta benchmark (issue 4): our delta bundles against bsdiff, xdelta3 -9, zstd -19 --long
# --patch-from (all run here, in the same run) and HDiffPatch (figures from anchors.tsv).
# Not a test: it takes many minutes and must not run in CI's test stage.
#
#   bench/delta-bench.sh [--build DIR] [--shared DIR] [--corpus DIR] [--work DIR]
#                        [--pairs "p1 p2"] [--out FILE] [--reuse-peers] [--apply-only]
#                        [--hash-engines "mbedtls openssl"]
#
# --build   build directory with bin/ota-publish and bin/ota-agent (ours: `ota-publish delta`,
#           which encodes on every core, and `ota-agent apply`, exactly as integrators run them)
# --shared  the shared/ folder with corpus/make-corpus.sh and anchors.tsv (default ../shared)
# --corpus  where the corpus is built once and cached (default /work/corpus)
# --work    scratch space for patches and results (default /tmp/delta-bench)
# --outputs where every method writes the image it rebuilds (default /dev/shm/ota-delta-bench, a
#           tmpfs: the disk then does not decide the apply times, and ours' fsync costs nothing,
#           as for peers that do not sync; give a disk directory to include the write-back)
# --reuse-peers  keep the peers' patches from an earlier run in --work (they do not change); their
#                apply is measured again
# --table-only   only (re)write the table from the results already in --work
# --apply-only   keep our bundles from an earlier run in --work (same encoder) and only measure
#                the apply again (with --reuse-peers: after a change to the agent's installer)
# --hash-engines  also apply our bundle with each of these `--hash-engine`s (3 runs each) and add
#                 a table of those apply times
# OTA_BENCH_ENCODE_TIMEOUT  seconds allowed for each encode (default 3600)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD=$REPO/build
SHARED=$REPO/../shared
CORPUS=/work/corpus
WORK=/tmp/delta-bench
OUTPUTS=/dev/shm/ota-delta-bench
PAIRS=""
OUT=$REPO/docs/benchmarks.md
REUSE=0
TABLE_ONLY=0
APPLY_ONLY=0
ENGINES=""
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --shared) SHARED=$2; shift 2 ;;
    --corpus) CORPUS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --outputs) OUTPUTS=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --reuse-peers) REUSE=1; shift ;;
    --table-only) TABLE_ONLY=1; shift ;;
    --apply-only) APPLY_ONLY=1; shift ;;
    --hash-engines) ENGINES=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
ANCHORS=$SHARED/corpus/anchors.tsv
mkdir -p "$WORK"
[ -s "$CORPUS/corpus.tsv" ] || "$SHARED/corpus/make-corpus.sh" "$CORPUS"
[ -n "$PAIRS" ] || PAIRS=$(tail -n +2 "$CORPUS/corpus.tsv" | cut -f1 | tr '\n' ' ')

# Our commands, as integrators and fleet backends run them.
publish() { "$BUILD/bin/ota-publish" delta "$1" "$2" "$3"; }
apply_ours() { "$BUILD/bin/ota-agent" apply "$1" --source "$2" --output "$3"; }
OURS="\`ota-publish delta\` / \`ota-agent apply\`"
export -f publish apply_ours
export BUILD

# timed OUTFILE cmd... : runs cmd, appends "seconds peak_rss_kib" to OUTFILE
# (wall time to the millisecond: /usr/bin/time's %e has only 10 ms, too coarse for small pairs)
timed() {
  local f=$1 s e; shift
  s=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$f.t" "$@" >/dev/null 2>>"$WORK/errors.log" || return 0
  e=$(date +%s%N)
  printf '%d.%03d %s\n' $(((e - s) / 1000000000)) $((((e - s) / 1000000) % 1000)) "$(tail -1 "$f.t")" >>"$f"
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print ""; else print a[int((NR+1)/2)]}'; }

# run_method PAIR METHOD ENCODE-CMD APPLY-CMD: sizes, 3 apply runs (time + RSS), output check.
# A kept patch (peers with --reuse-peers, ours with --apply-only) is not encoded again, but its
# apply is always measured again, so every apply column comes from this run.
run_method() {
  local pair=$1 m=$2 enc=$3 app=$4 d=$WORK/$1 res=$WORK/$1/$2.result
  local keep=0 s e encode_s=""
  if [ "$m" = ours ]; then keep=$APPLY_ONLY; else keep=$REUSE; fi
  if [ "$keep" = 1 ] && [ -s "$res" ] && [ "$(cut -f1 "$res")" = failed ]; then return 0; fi
  if [ "$keep" = 1 ] && [ -s "$d/$m.patch" ] && [ -s "$res" ]; then
    encode_s=$(cut -f5 "$res")
    rm -f "$d/$m.runs"
  else
    rm -f "$d/$m".* ; mkdir -p "$d"
    s=$(date +%s.%N)
    if ! timeout "${OTA_BENCH_ENCODE_TIMEOUT:-3600}" bash -c "$enc" >>"$WORK/errors.log" 2>&1; then
      printf 'failed\t\t\t\t\n' >"$res"; return 0
    fi
    e=$(date +%s.%N)
    encode_s=$(echo "$e - $s" | bc)
  fi
  local size; size=$(stat -c %s "$d/$m.patch")
  local out=$OUTPUTS/$pair/$m.out
  mkdir -p "$OUTPUTS/$pair"
  for i in 1 2 3; do rm -f "$out" "$out.journal"; timed "$d/$m.runs" bash -c "$app"; done
  local ok=ok; cmp -s "$out" "$NEW" || ok=WRONG
  local secs rss
  secs=$(cut -d' ' -f1 "$d/$m.runs" | median); rss=$(cut -d' ' -f2 "$d/$m.runs" | median)
  printf '%s\t%s\t%s\t%s\t%.1f\n' "$ok" "$size" "$secs" "$((rss / 1024))" "$encode_s" >"$res"
  rm -f "$out" "$out.journal"
}

for pair in $PAIRS; do
  [ "$TABLE_ONLY" = 1 ] && break
  OLD=$CORPUS/$(awk -F'\t' -v p="$pair" '$1==p {print $2}' "$CORPUS/corpus.tsv")
  NEW=$CORPUS/$(awk -F'\t' -v p="$pair" '$1==p {print $3}' "$CORPUS/corpus.tsv")
  d=$WORK/$pair o=$OUTPUTS/$pair; mkdir -p "$d" "$o"
  echo "== $pair $(date +%T)" >&2
  run_method "$pair" ours "publish '$OLD' '$NEW' '$d/ours.patch'" "apply_ours '$d/ours.patch' '$OLD' '$o/ours.out'"
  max=$(( $(stat -c %s "$OLD") > $(stat -c %s "$NEW") ? $(stat -c %s "$OLD") : $(stat -c %s "$NEW") ))
  wl=10; while [ $((1 << wl)) -lt "$max" ]; do wl=$((wl + 1)); done
  run_method "$pair" zstd "zstd -q -19 --long=$wl --patch-from='$OLD' '$NEW' -o '$d/zstd.patch'" \
    "zstd -q -d --long=$wl --patch-from='$OLD' '$d/zstd.patch' -o '$o/zstd.out' -f"
  run_method "$pair" xdelta3 "xdelta3 -9 -S djw -B $max -e -f -s '$OLD' '$NEW' '$d/xdelta3.patch'" \
    "xdelta3 -d -B $max -f -s '$OLD' '$d/xdelta3.patch' '$o/xdelta3.out'"
  if [ "$max" -lt $((256 << 20)) ]; then # bsdiff needs 17x the image in memory and hours on 384 MiB
    run_method "$pair" bsdiff "bsdiff '$OLD' '$NEW' '$d/bsdiff.patch'" "bspatch '$OLD' '$o/bsdiff.out' '$d/bsdiff.patch'"
  else
    printf 'skipped\t\t\t\t\n' >"$d/bsdiff.result"
  fi
  # The same bundle applied with each hash engine (the runs reuse run_method's apply loop).
  for engine in $ENGINES; do
    [ -s "$d/ours.patch" ] || continue
    rm -f "$d/ours-$engine.runs"
    for i in 1 2 3; do
      rm -f "$o/ours.out" "$o/ours.out.journal"
      timed "$d/ours-$engine.runs" "$BUILD/bin/ota-agent" apply "$d/ours.patch" --source "$OLD" \
        --output "$o/ours.out" --hash-engine "$engine"
    done
    ok=ok; cmp -s "$o/ours.out" "$NEW" || ok=WRONG
    printf '%s\t%s\t%s\n' "$ok" "$(cut -d' ' -f1 "$d/ours-$engine.runs" | median)" \
      "$(($(cut -d' ' -f2 "$d/ours-$engine.runs" | median) / 1024))" >"$d/ours-$engine.result"
    rm -f "$o/ours.out" "$o/ours.out.journal"
  done
done

# The table.
field() { cut -f"$2" "$WORK/$1" 2>/dev/null || true; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && [ "$2" != 0 ] && echo "scale=3; $1 / $2" | bc | sed 's/^\./0./' || echo "-"; }
anchor() { awk -F'\t' -v p="$1" -v c="$2" '$1==p && $2=="hdiffz" {print $c}' "$ANCHORS"; }
{
  echo "# Delta benchmark"
  echo
  echo "Generated by \`bench/delta-bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores,"
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo),"
  echo "$(. /etc/os-release; echo "$PRETTY_NAME"). Ours: $OURS (every blob, the source and the"
  echo "written image verified by SHA-256, output synced). Peers run here in the same run: bsdiff 4.3,"
  echo "\`xdelta3 -9 -S djw\`, \`zstd -19 --long --patch-from\`. HDiffPatch is not in Debian: its sizes,"
  echo "apply times and RSS are the anchors measured on this kind of machine (\`shared/corpus/anchors.tsv\`)."
  echo "Sizes in bytes; ratios are our bundle / the peer's patch (below 1 = ours smaller). Apply: median"
  echo "of 3 runs, wall seconds and peak RSS (MiB, from \`/usr/bin/time\`); every method writes its"
  echo "output to $OUTPUTS ($(df --output=fstype "$OUTPUTS" 2>/dev/null | tail -1)). Times are noisy."
  echo
  echo "| pair | old | new | ours | / hdiffz | / bsdiff | / xdelta3 | / zstd | ours apply s / MiB | hdiffz s / MiB (anchor) | bsdiff s / MiB | xdelta3 s / MiB | zstd s / MiB | ours encode s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for pair in $PAIRS; do
    o=$(awk -F'\t' -v p="$pair" '$1==p {print $4}' "$CORPUS/corpus.tsv")
    n=$(awk -F'\t' -v p="$pair" '$1==p {print $5}' "$CORPUS/corpus.tsv")
    ours=$(field "$pair/ours.result" 2)
    h=$(anchor "$pair" 5)
    peer() { local s; s=$(field "$pair/$1.result" 3); [ -n "$s" ] && echo "$s / $(field "$pair/$1.result" 4)" || field "$pair/$1.result" 1; }
    [ -s "$WORK/$pair/ours.result" ] || continue
    echo "| $pair | $o | $n | $ours$( [ "$(field "$pair/ours.result" 1)" = ok ] || echo " ($(field "$pair/ours.result" 1))") | $(ratio "$ours" "$h") | $(ratio "$ours" "$(field "$pair/bsdiff.result" 2)") | $(ratio "$ours" "$(field "$pair/xdelta3.result" 2)") | $(ratio "$ours" "$(field "$pair/zstd.result" 2)") | $(peer ours) | $(anchor "$pair" 7) / $(anchor "$pair" 8) | $(peer bsdiff) | $(peer xdelta3) | $(peer zstd) | $(field "$pair/ours.result" 5) |"
  done
  echo
  rs=$(for pair in $PAIRS; do [ -s "$WORK/$pair/ours.result" ] && ratio "$(field "$pair/ours.result" 2)" "$(anchor "$pair" 5)"; done | grep -v -- - | sort -n)
  echo "- Our bundle / HDiffPatch: median $(echo "$rs" | median), worst $(echo "$rs" | tail -1) (bar: median <= 1.0, worst <= 1.15)."
  as=$(for pair in $PAIRS; do [ -s "$WORK/$pair/ours.result" ] && ratio "$(field "$pair/ours.result" 3)" "$(anchor "$pair" 7)"; done | grep -v -- - | sort -n)
  echo "- Our apply time / HDiffPatch's anchor: median $(echo "$as" | median), worst $(echo "$as" | tail -1) (bar: <= 1.5)."
  # How fast this machine runs now against the anchors' machine, judged by the peers both ran.
  fs=$(for pair in $PAIRS; do for m in bsdiff:bsdiff xdelta3:xdelta3 zstd:zstd19-patch; do
         here=$(field "$pair/${m%%:*}.result" 3)
         there=$(awk -F'\t' -v p="$pair" -v m="${m#*:}" '$1==p && $2==m {print $7}' "$ANCHORS")
         [ -n "$here" ] && [ -n "$there" ] && echo "scale=2; $here / $there" | bc
       done; done | sort -n)
  f=$(echo "$fs" | median)
  echo "- The same peer binaries here / in anchors.tsv (apply time, all pairs): median ${f}x (from $(echo "$fs" | head -1)x to $(echo "$fs" | tail -1)x)."
  if [ -n "$f" ]; then
    ss=$(for pair in $PAIRS; do o=$(field "$pair/ours.result" 3); h=$(anchor "$pair" 7); [ -n "$o" ] && [ -n "$h" ] && echo "scale=3; $o / ($h * $f)" | bc | sed 's/^\./0./'; done | sort -n)
    echo "- Our apply time / (HDiffPatch's anchor x ${f}), an estimate of the ratio on one machine: median $(echo "$ss" | median), worst $(echo "$ss" | tail -1)."
  fi
  ps=$(for pair in $PAIRS; do o=$(field "$pair/ours.result" 3); best=$(for m in bsdiff xdelta3 zstd; do field "$pair/$m.result" 3; done | grep . | sort -n | head -1); [ -n "$o" ] && [ -n "$best" ] && ratio "$o" "$best"; done | sort -n)
  echo "- Our apply time / the fastest Debian peer on the pair, same run: median $(echo "$ps" | median), worst $(echo "$ps" | tail -1)."
  /usr/bin/time -f "%M" -o "$WORK/floor.t" "$BUILD/bin/ota-agent" --help >/dev/null 2>&1 || true
  floor=$(tail -1 "$WORK/floor.t")
  echo "- Peak apply RSS of \`ota-agent apply\`: $(for pair in $PAIRS; do field "$pair/ours.result" 4; done | sort -n | tail -1) MiB at most (bar: 16 MiB); \`ota-agent --help\` alone: $((floor / 1024)) MiB."
  if [ -n "$ENGINES" ]; then
    echo
    echo "\`ota-agent apply --hash-engine E\` on the same bundles (median of 3, wall s / peak RSS MiB):"
    echo
    echo "| pair |$(for e in $ENGINES; do printf ' %s |' "$e"; done)"
    echo "|---|$(for e in $ENGINES; do printf -- '---|'; done)"
    for pair in $PAIRS; do
      [ -s "$WORK/$pair/ours.result" ] || continue
      echo "| $pair |$(for e in $ENGINES; do r=$WORK/$pair/ours-$e.result; if [ -s "$r" ]; then printf ' %s / %s%s |' "$(cut -f2 "$r")" "$(cut -f3 "$r")" "$( [ "$(cut -f1 "$r")" = ok ] || echo " ($(cut -f1 "$r"))")"; else printf ' - |'; fi; done)"
    done
  fi
  # The full-image install benchmark's section (bench/install-bench.sh) is kept as it is.
  if [ -f "$OUT" ] && grep -q '<!-- install-bench:begin' "$OUT"; then
    echo
    sed -n '/<!-- install-bench:begin/,/<!-- install-bench:end/p' "$OUT"
  fi
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
