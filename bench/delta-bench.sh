#!/bin/bash
# Delta benchmark: our delta bundles against bsdiff, xdelta3 -9, zstd -19 --long --patch-from (all
# run here, in the same run) and HDiffPatch (figures from anchors.tsv, for the shared corpus).
# Not a test: it takes many minutes and must not run in CI's test stage.
#
# Besides the shared corpus it builds derived pairs (once, in CORPUS/derived): the kernel pair
# compressed as kbuild makes Image.gz (gzip -9 -n) and with zlib at level 6, a zip of an npm
# package pair, and two 64 MiB ext4 images that differ in three files, edited in place or with
# one of them (a new 39 MiB file made of the others' bytes) shifting the rest by 35 MiB, and the
# root file system pair as squashfs with gzip blocks.
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
# --no-derived   only the shared corpus's pairs
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
DERIVED=1
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
    --no-derived) DERIVED=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
ANCHORS=$SHARED/corpus/anchors.tsv
mkdir -p "$WORK"
[ -s "$CORPUS/corpus.tsv" ] || "$SHARED/corpus/make-corpus.sh" "$CORPUS"

# Derived pairs: written to CORPUS/derived/<pair>/{old,new}.* and CORPUS/derived.tsv (the same
# columns as corpus.tsv, paths relative to CORPUS). Pairs whose inputs are missing are skipped.
derive_pairs() {
  local D=$CORPUS/derived tsv=$CORPUS/derived.tsv epoch=1790000000 version=3
  # Made again when this function makes other pairs than those on record (bump version).
  [ -s "$tsv" ] && [ "$(cat "$CORPUS/derived.version" 2>/dev/null)" = "$version" ] && return 0
  mkdir -p "$D"
  local K=$CORPUS/kernel
  if [ -s "$K/old.Image" ]; then
    mkdir -p "$D/kernel-gz9" "$D/kernel-zlib6"
    for v in old new; do
      gzip -9 -n -c "$K/$v.Image" >"$D/kernel-gz9/$v.Image.gz"
      python3 -c 'import sys, zlib; open(sys.argv[2], "wb").write(zlib.compress(open(sys.argv[1], "rb").read(), 6))' \
        "$K/$v.Image" "$D/kernel-zlib6/$v.Image.z"
    done
  fi
  # A zip of an npm package pair (an ARM64 executable and its package files), as Info-ZIP's zip
  # writes it, members sorted, times fixed.
  local N=$CORPUS/.download/npm/x
  # The same zips with stored (uncompressed) members are the yardstick: what the deflate
  # members cost on top of the same contents.
  if [ -d "$N/esbuild-linux-arm64-0.25.11/package" ] && command -v zip >/dev/null; then
    mkdir -p "$D/zip-esbuild" "$D/zip-esbuild-stored"
    for pv in old:0.25.11 new:0.25.12; do
      local t; t=$(mktemp -d)
      cp -a "$N/esbuild-linux-arm64-${pv#*:}/package" "$t/package"
      find "$t/package" -exec touch -h -d "@$epoch" {} +
      (cd "$t" && find package -type f | LC_ALL=C sort | TZ=UTC zip -X -q -@ "$D/zip-esbuild/${pv%%:*}.zip")
      (cd "$t" && find package -type f | LC_ALL=C sort | TZ=UTC zip -0 -X -q -@ "$D/zip-esbuild-stored/${pv%%:*}.zip")
      rm -rf "$t"
    done
  fi
  # 64 MiB ext4 images from a tree of the corpus's root file system (usr/bin executables, etc,
  # shared libraries): in place = three files edited without changing their size; shifted = two
  # edited and a new 39 MiB file, made of the tree's own bytes, allocated before the others, so
  # they move by 35 MiB. The trees live on tmpfs, whose readdir order is creation order, so
  # mke2fs -d lays them out the same way on every run.
  local R=$CORPUS/.download/rootfs/v1
  if [ -d "$R/usr/bin" ] && command -v mke2fs >/dev/null; then
    local T; T=$(mktemp -d -p /dev/shm)
    mkdir -p "$T/base/bin" "$T/base/etc" "$T/base/lib"
    ls -S "$R/usr/bin" | sed -n '11,60p' | while read -r f; do cp -L "$R/usr/bin/$f" "$T/base/bin/" 2>/dev/null || true; done
    cp -a "$R/etc/." "$T/base/etc/" 2>/dev/null || true
    ls -S "$R/usr/lib/aarch64-linux-gnu" | grep '\.so' | sed -n '4,14p' | while read -r f; do
      cp -L "$R/usr/lib/aarch64-linux-gnu/$f" "$T/base/lib/" 2>/dev/null || true
    done
    edit() { printf "$2" | dd of="$1" bs=1 seek="$3" conv=notrunc status=none; }
    cp -a "$T/base" "$T/inplace"
    edit "$T/inplace/etc/passwd" X 10
    local first_bin first_lib
    first_bin=$(ls "$T/base/bin" | sed -n 1p); first_lib=$(ls "$T/base/lib" | sed -n 1p)
    edit "$T/inplace/bin/$first_bin" '\001\002' 5000
    edit "$T/inplace/lib/$first_lib" '\003' 70000
    cp -a "$T/base" "$T/shifted"
    edit "$T/shifted/etc/passwd" X 10
    edit "$T/shifted/bin/$first_bin" '\001\002' 5000
    mkdir -p "$T/shifted/data"
    # (cat stops on SIGPIPE once dd has its 39 MiB)
    (for i in 1 2 3; do cat "$T"/base/lib/* "$T"/base/bin/*; done) | dd of="$T/shifted/data/firmware.bin" \
      bs=1M count=39 iflag=fullblock status=none || true
    [ "$(stat -c %s "$T/shifted/data/firmware.bin")" = $((39 << 20)) ]
    for tree in base inplace shifted; do
      find "$T/$tree" -exec touch -h -d "@$epoch" {} +
      truncate -s 64M "$T/$tree.ext4"
      E2FSPROGS_FAKE_TIME=$epoch mke2fs -q -F -t ext4 -b 4096 -U 2d3c1f0e-9a8b-4c7d-8e6f-5a4b3c2d1e0f \
        -E root_owner=0:0,hash_seed=7e6d5c4b-3a29-4817-a6f5-e4d3c2b1a090 -d "$T/$tree" "$T/$tree.ext4"
    done
    mkdir -p "$D/ext4-inplace" "$D/ext4-shift"
    cp "$T/base.ext4" "$D/ext4-inplace/old.ext4"; cp "$T/inplace.ext4" "$D/ext4-inplace/new.ext4"
    cp "$T/base.ext4" "$D/ext4-shift/old.ext4"; cp "$T/shifted.ext4" "$D/ext4-shift/new.ext4"
    rm -rf "$T"
  fi
  # The corpus's root file system pair as squashfs with gzip blocks (mksquashfs -comp gzip:
  # every block a zlib stream, which the deflate ops take apart); rootfs-ext4 holds the same
  # trees uncompressed, rootfs-sqfs the same with zstd blocks.
  local V=$CORPUS/.download/rootfs
  if [ -d "$V/v1/usr" ] && [ -d "$V/v2/usr" ] && command -v mksquashfs >/dev/null; then
    mkdir -p "$D/sqfs-gzip"
    mksquashfs "$V/v1" "$D/sqfs-gzip/old.sqfs" -noappend -no-progress -comp gzip \
      -mkfs-time 1790000000 -all-time 1790000000 >/dev/null
    mksquashfs "$V/v2" "$D/sqfs-gzip/new.sqfs" -noappend -no-progress -comp gzip \
      -mkfs-time 1792000000 -all-time 1792000000 >/dev/null
  fi
  printf 'pair\told\tnew\told_bytes\tnew_bytes\n' >"$tsv.tmp"
  for d in "$D"/*/; do
    local p o n; p=$(basename "$d"); o=$(ls "$d"old.*); n=$(ls "$d"new.*)
    printf '%s\t%s\t%s\t%s\t%s\n' "$p" "derived/$p/$(basename "$o")" "derived/$p/$(basename "$n")" \
      "$(stat -c %s "$o")" "$(stat -c %s "$n")" >>"$tsv.tmp"
  done
  mv "$tsv.tmp" "$tsv"
  echo "$version" >"$CORPUS/derived.version"
}
LISTS="$CORPUS/corpus.tsv"
if [ "$DERIVED" = 1 ]; then derive_pairs; LISTS="$LISTS $CORPUS/derived.tsv"; fi
# pair_field PAIR COLUMN: a column of the pair's line in corpus.tsv or derived.tsv
pair_field() { awk -F'\t' -v p="$1" -v c="$2" '$1==p {print $c; exit}' $LISTS; }
[ -n "$PAIRS" ] || PAIRS=$(for l in $LISTS; do tail -n +2 "$l" | cut -f1; done | tr '\n' ' ')

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
  local keep=0 s e encode_s="" encode_rss=""
  if [ "$m" = ours ]; then keep=$APPLY_ONLY; else keep=$REUSE; fi
  if [ "$keep" = 1 ] && [ -s "$res" ] && [ "$(cut -f1 "$res")" = failed ]; then return 0; fi
  # (a kept patch must be newer than both images: derived pairs are made again when their list
  # changes, and a patch of the earlier images would not decode)
  if [ "$keep" = 1 ] && [ -s "$d/$m.patch" ] && [ -s "$res" ] && [ "$d/$m.patch" -nt "$OLD" ] &&
    [ "$d/$m.patch" -nt "$NEW" ]; then
    encode_s=$(cut -f5 "$res")
    encode_rss=$(cut -f6 "$res")
    rm -f "$d/$m.runs"
  else
    rm -f "$d/$m".* ; mkdir -p "$d"
    s=$(date +%s.%N)
    if ! timeout "${OTA_BENCH_ENCODE_TIMEOUT:-3600}" /usr/bin/time -f "%M" -o "$d/$m.enc.t" \
        bash -c "$enc" >>"$WORK/errors.log" 2>&1; then
      printf 'failed\t\t\t\t\t\n' >"$res"; return 0
    fi
    e=$(date +%s.%N)
    encode_s=$(echo "$e - $s" | bc)
    encode_rss=$(($(tail -1 "$d/$m.enc.t") / 1024))
  fi
  local size; size=$(stat -c %s "$d/$m.patch")
  local out=$OUTPUTS/$pair/$m.out
  mkdir -p "$OUTPUTS/$pair"
  for i in 1 2 3; do rm -f "$out" "$out.journal"; timed "$d/$m.runs" bash -c "$app"; done
  if [ ! -s "$d/$m.runs" ]; then # every apply failed (errors.log says why)
    printf 'failed\t%s\t\t\t%.1f\t%s\n' "$size" "$encode_s" "$encode_rss" >"$res"; return 0
  fi
  local ok=ok; cmp -s "$out" "$NEW" || ok=WRONG
  local secs rss
  secs=$(cut -d' ' -f1 "$d/$m.runs" | median); rss=$(cut -d' ' -f2 "$d/$m.runs" | median)
  printf '%s\t%s\t%s\t%s\t%.1f\t%s\n' "$ok" "$size" "$secs" "$((rss / 1024))" "$encode_s" "$encode_rss" >"$res"
  rm -f "$out" "$out.journal"
}

for pair in $PAIRS; do
  [ "$TABLE_ONLY" = 1 ] && break
  OLD=$CORPUS/$(pair_field "$pair" 2)
  NEW=$CORPUS/$(pair_field "$pair" 3)
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
    printf 'skipped\t\t\t\t\t\n' >"$d/bsdiff.result"
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
  echo "# Benchmarks: delta and full-image install"
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
  echo "| pair | old | new | ours | / hdiffz | / bsdiff | / xdelta3 | / zstd | ours apply s / MiB | hdiffz s / MiB (anchor) | bsdiff s / MiB | xdelta3 s / MiB | zstd s / MiB |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  peer() {
    local s ok; s=$(field "$pair/$1.result" 3); ok=$(field "$pair/$1.result" 1)
    if [ -n "$s" ]; then echo "$s / $(field "$pair/$1.result" 4)$([ "$ok" = ok ] || echo " ($ok)")"; else echo "$ok"; fi
  }
  encoded() { local s; s=$(field "$pair/$1.result" 5); [ -n "$s" ] && echo "$s / $(field "$pair/$1.result" 6)" || field "$pair/$1.result" 1; }
  for pair in $PAIRS; do
    o=$(pair_field "$pair" 4); n=$(pair_field "$pair" 5)
    ours=$(field "$pair/ours.result" 2)
    h=$(anchor "$pair" 5)
    [ -s "$WORK/$pair/ours.result" ] || continue
    echo "| $pair | $o | $n | $ours$( [ "$(field "$pair/ours.result" 1)" = ok ] || echo " ($(field "$pair/ours.result" 1))") | $(ratio "$ours" "$h") | $(ratio "$ours" "$(field "$pair/bsdiff.result" 2)") | $(ratio "$ours" "$(field "$pair/xdelta3.result" 2)") | $(ratio "$ours" "$(field "$pair/zstd.result" 2)") | $(peer ours) | $(anchor "$pair" 7) / $(anchor "$pair" 8) | $(peer bsdiff) | $(peer xdelta3) | $(peer zstd) |"
  done
  echo
  echo "Encoding, wall seconds / peak RSS in MiB (ours on every core, the peers on one; one run each):"
  echo
  echo "| pair | ours | bsdiff | xdelta3 | zstd | ours RSS per old+new byte |"
  echo "|---|---|---|---|---|---|"
  for pair in $PAIRS; do
    [ -s "$WORK/$pair/ours.result" ] || continue
    rss=$(field "$pair/ours.result" 6)
    per=$( [ -n "$rss" ] && echo "scale=2; $rss * 1048576 / ($(pair_field "$pair" 4) + $(pair_field "$pair" 5))" | bc | sed 's/^\./0./' )
    echo "| $pair | $(encoded ours) | $(encoded bsdiff) | $(encoded xdelta3) | $(encoded zstd) | ${per:--} |"
  done
  echo
  gz=$(field kernel-gz9/ours.result 2); z6=$(field kernel-zlib6/ours.result 2); k=$(field kernel/ours.result 2)
  if [ -n "$gz$z6" ] && [ -n "$k" ]; then
    echo "- Compressed kernels / the uncompressed kernel pair's bundle: gzip -9 $(ratio "$gz" "$k"), zlib level 6 $(ratio "$z6" "$k") (aim: <= 1.3)."
  fi
  zd=$(field zip-esbuild/ours.result 2); zs=$(field zip-esbuild-stored/ours.result 2)
  if [ -n "$zd" ] && [ -n "$zs" ]; then
    echo "- The deflated zip pair / the same zips with stored members: $(ratio "$zd" "$zs") (aim: <= 1.3)."
  fi
  sg=$(field sqfs-gzip/ours.result 2); se=$(field rootfs-ext4/ours.result 2); sz=$(field rootfs-sqfs/ours.result 2)
  if [ -n "$sg" ] && [ -n "$se" ]; then
    echo "- The gzip squashfs pair / the same trees in ext4 (rootfs-ext4): $(ratio "$sg" "$se"); / the zstd squashfs (rootfs-sqfs, whose changed zstd blocks are made again): $(ratio "$sg" "$sz")."
  fi
  rs=$(for pair in $PAIRS; do [ -s "$WORK/$pair/ours.result" ] && ratio "$(field "$pair/ours.result" 2)" "$(anchor "$pair" 5)"; true; done | { grep -v -- - || true; } | sort -n)
  echo "- Our bundle / HDiffPatch: median $(echo "$rs" | median), worst $(echo "$rs" | tail -1) (bar: median <= 1.0, worst <= 1.15)."
  mismatched=$(for pair in $PAIRS; do
      o=$(anchor "$pair" 3); [ -n "$o" ] || continue
      if [ "$o" != "$(pair_field "$pair" 4)" ] || [ "$(anchor "$pair" 4)" != "$(pair_field "$pair" 5)" ]; then printf '%s ' "$pair"; fi
    done)
  [ -z "$mismatched" ] || echo "- Pairs whose images here differ in size from the anchors' (their HDiffPatch ratios are approximate): $mismatched"
  as=$(for pair in $PAIRS; do [ -s "$WORK/$pair/ours.result" ] && ratio "$(field "$pair/ours.result" 3)" "$(anchor "$pair" 7)"; true; done | { grep -v -- - || true; } | sort -n)
  echo "- Our apply time / HDiffPatch's anchor: median $(echo "$as" | median), worst $(echo "$as" | tail -1) (bar: <= 1.5)."
  # How fast this machine runs now against the anchors' machine, judged by the peers both ran.
  fs=$(for pair in $PAIRS; do for m in bsdiff:bsdiff xdelta3:xdelta3 zstd:zstd19-patch; do
         here=$(field "$pair/${m%%:*}.result" 3)
         there=$(awk -F'\t' -v p="$pair" -v m="${m#*:}" '$1==p && $2==m {print $7}' "$ANCHORS")
         [ -n "$here" ] && [ -n "$there" ] && echo "scale=2; $here / $there" | bc
         true
       done; done | sort -n)
  f=$(echo "$fs" | median)
  echo "- The same peer binaries here / in anchors.tsv (apply time, all pairs): median ${f}x (from $(echo "$fs" | head -1)x to $(echo "$fs" | tail -1)x)."
  if [ -n "$f" ]; then
    ss=$(for pair in $PAIRS; do o=$(field "$pair/ours.result" 3); h=$(anchor "$pair" 7); [ -n "$o" ] && [ -n "$h" ] && echo "scale=3; $o / ($h * $f)" | bc | sed 's/^\./0./'; true; done | sort -n)
    echo "- Our apply time / (HDiffPatch's anchor x ${f}), an estimate of the ratio on one machine: median $(echo "$ss" | median), worst $(echo "$ss" | tail -1)."
  fi
  ps=$(for pair in $PAIRS; do o=$(field "$pair/ours.result" 3); best=$(for m in bsdiff xdelta3 zstd; do [ "$(field "$pair/$m.result" 1)" = ok ] && field "$pair/$m.result" 3; true; done | { grep . || true; } | sort -n | head -1); [ -n "$o" ] && [ -n "$best" ] && ratio "$o" "$best"; true; done | sort -n)
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
