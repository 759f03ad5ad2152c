#!/bin/bash
# Benchmark driver.  usage: run.sh TOOL RUN   (TOOL: cairn | restic | borg-zstd3 | borg-lz4 | rustic | limit)
# TOOL=limit measures what the machine allows on the same data, with the same cold start:
#   read-tar  tar -c of the source tree into cat (one reader, in directory order)
#   read-par  every source file read by 8 cats at once (what a parallel reader can get)
#   walk      find -printf of every entry's size, time, inode and mode (the metadata a no-change backup needs)
#   unpack    tar -x of the source tree onto the same disk, synced (what a restore writes)
#   repo-read every file of this round's cairn repository read by 4 cats (what check must read)
# Steps: init, backup1 (full), backup2 (no change), mutate + backup3, restore latest -> /tmp/restore-x
#        (+ verification vs MANIFEST.mutated), check (read all data), then mutate revert.
# Env: COLD=1 -> sync + drop page cache before every measured step (default 1).
set -uo pipefail
TOOL=$1; RUN=$2
COLD=${COLD:-1}
SRC=/tmp/benchdata/src
REPO=/tmp/repos/$TOOL-$RUN
OUTD=/tmp/bench/results/$TOOL-$RUN
RES=/tmp/bench/results/results.tsv
RESTORE=/tmp/restore-x
export RESTIC_PASSWORD=benchpass RUSTIC_PASSWORD=benchpass BORG_PASSPHRASE=benchpass
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
rm -rf "$REPO" "$OUTD" "$RESTORE"; mkdir -p "$OUTD" /tmp/repos
/tmp/benchdata/mutate.sh revert >/dev/null
[ -f $RES ] || printf "tool\trun\tstep\tcold\twall_s\tuser_s\tsys_s\tmaxrss_kb\tsync_s\trepo_bytes\trc\tmachine_busy_s\tsteal_s\tnote\n" > $RES

busy_now() { awk '/^cpu / {print $2+$3+$4+$7+$8}' /proc/stat; }
wait_quiet() {  # wait until the machine is idle: < 0.10 CPU-seconds busy in 3 consecutive 2 s windows (max 30 min)
  local ok=0 waited=0
  while [ $ok -lt 3 ] && [ $waited -lt 1800 ]; do
    local a=$(busy_now); sleep 2; local b=$(busy_now); waited=$((waited+2))
    if [ $((b - a)) -lt 10 ]; then ok=$((ok+1)); else ok=0; fi
  done
  [ $waited -gt 6 ] && echo "waited ${waited}s for quiet before $TOOL $RUN" >> /tmp/bench/logs/quiet.log
  return 0
}
prep() {
  wait_quiet
  if [ "$COLD" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches;
  else  # warm: make sure source and repo are in the page cache
    tar -C /tmp/benchdata -cf - src | cat > /dev/null; [ -d "$REPO" ] && tar -C /tmp/repos -cf - "$(basename $REPO)" | cat > /dev/null; sync
  fi
}
# m STEP NOTE cmd...
m() {
  local step=$1 note=$2; shift 2
  prep
  local c0=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $9}' /proc/stat)
  /usr/bin/time -v -o "$OUTD/$step.time" "$@" > "$OUTD/$step.log" 2>&1; local rc=$?
  local c1=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $9}' /proc/stat)
  local busy=$(echo "$c0 $c1" | awk '{printf "%.2f", ($3-$1)/100}') steal=$(echo "$c0 $c1" | awk '{printf "%.2f", ($4-$2)/100}')
  local t0=$(date +%s.%N); sync; local t1=$(date +%s.%N)
  local wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$OUTD/$step.time")
  local user=$(awk -F': ' '/User time/ {print $2}' "$OUTD/$step.time")
  local sys=$(awk -F': ' '/System time/ {print $2}' "$OUTD/$step.time")
  local rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$OUTD/$step.time")
  local rb=$(du -sb "$REPO" 2>/dev/null | cut -f1)
  local syncs=$(echo "$t1 - $t0" | bc)
  printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\n" "$TOOL" "$RUN" "$step" "$COLD" "$wall" "$user" "$sys" "$rss" "$syncs" "$rb" "$rc" "$busy" "$steal" "$note" | tee -a $RES
}
verify() {   # compare restore with expected manifest
  local root=$1 expect=$2
  /usr/bin/python3 /tmp/benchdata/manifest.py "$root" > "$OUTD/restore.manifest"
  /usr/bin/python3 /tmp/benchdata/compare.py "$expect" "$OUTD/restore.manifest" > "$OUTD/verify.txt" 2>&1; local rc=$?
  echo "hardlinked paths in restore: $(find "$root" -type f -links +1 | wc -l)" >> "$OUTD/verify.txt"
  echo "verify rc=$rc: $(head -1 "$OUTD/verify.txt") | $(tail -1 "$OUTD/verify.txt")" | tee -a "$OUTD/verify.txt"
}

case $TOOL in
restic*)
  export RESTIC_REPOSITORY=$REPO
  RX=${RESTIC_EXTRA:-}
  m init "" restic init $RX
  restic cat config > "$OUTD/config.json" 2>&1
  m backup1 full restic backup $RX $SRC
  m backup2 nochange restic backup $RX $SRC
  /tmp/benchdata/mutate.sh > "$OUTD/mutate.log"
  m backup3 mutated restic backup $RX $SRC
  m restore latest restic restore latest --target $RESTORE
  verify $RESTORE$SRC /tmp/benchdata/MANIFEST.mutated
  rm -rf $RESTORE
  m check read-data restic check --read-data
  restic stats --mode raw-data > "$OUTD/stats.txt" 2>&1
  restic snapshots > "$OUTD/snapshots.txt" 2>&1
  ;;
borg*)
  case $TOOL in borg-lz4*) C=lz4;; borg-zstd3*) C=zstd,3;; esac
  ENC=${BORG_ENC:-repokey-blake2}
  m init "$ENC" borg init --encryption=$ENC $REPO
  m backup1 "full $C" borg create --stats --compression $C $REPO::b1 $SRC
  m backup2 nochange borg create --stats --compression $C $REPO::b2 $SRC
  /tmp/benchdata/mutate.sh > "$OUTD/mutate.log"
  m backup3 mutated borg create --stats --compression $C $REPO::b3 $SRC
  mkdir -p $RESTORE
  m restore latest sh -c "cd $RESTORE && exec borg extract $REPO::b3"
  verify $RESTORE$SRC /tmp/benchdata/MANIFEST.mutated
  rm -rf $RESTORE
  m check verify-data borg check --verify-data $REPO
  borg info $REPO > "$OUTD/stats.txt" 2>&1
  ;;
rustic*)
  R="rustic -r $REPO"
  m init "" $R init
  m backup1 full $R backup $SRC
  m backup2 nochange $R backup $SRC
  /tmp/benchdata/mutate.sh > "$OUTD/mutate.log"
  m backup3 mutated $R backup $SRC
  m restore latest $R restore latest $RESTORE
  verify $RESTORE$SRC /tmp/benchdata/MANIFEST.mutated
  rm -rf $RESTORE
  m check read-data $R check --read-data
  $R repoinfo > "$OUTD/stats.txt" 2>&1
  ;;
limit)
  # The tar used by "unpack" is made once, outside any measurement.
  TAR=/tmp/bench/src.tar
  [ -f $TAR ] || tar -C /tmp/benchdata -cf $TAR src
  m read-tar "tar -c | cat" sh -c "tar -C /tmp/benchdata -cf - src | cat > /dev/null"
  m read-par "8 x cat" sh -c "cd /tmp/benchdata && find src -type f -print0 | xargs -0 -P 8 -n 64 cat > /dev/null"
  m walk "find -printf" sh -c "find $SRC -printf '%s %T@ %C@ %i %m %U %G\\n' > /dev/null"
  rm -rf /tmp/unpack-x; mkdir -p /tmp/unpack-x
  m unpack "tar -x + sync" sh -c "tar -C /tmp/unpack-x -xf $TAR && sync"
  rm -rf /tmp/unpack-x
  CR=/tmp/repos/cairn-$RUN
  if [ -d $CR ]; then m repo-read "4 x cat of cairn-$RUN" sh -c "find $CR -type f -print0 | xargs -0 -P 4 -n 16 cat > /dev/null"; fi
  ;;
cairn*)
  export CAIRN_REPOSITORY=$REPO CAIRN_PASSWORD_FILE=/tmp/bench/cairn.pass
  export XDG_CACHE_HOME=/tmp/bench/cairn-cache-$RUN
  rm -rf "$XDG_CACHE_HOME"
  C=${CAIRN:-cairn}
  m init "" $C init
  m backup1 full $C backup $SRC
  m backup2 nochange $C backup $SRC
  /tmp/benchdata/mutate.sh > "$OUTD/mutate.log"
  m backup3 mutated $C backup $SRC
  m restore latest $C restore latest --target $RESTORE
  verify $RESTORE$SRC /tmp/benchdata/MANIFEST.mutated
  rm -rf $RESTORE
  m check read-data $C check --read-data
  $C stats > "$OUTD/stats.txt" 2>&1
  ;;
esac
/tmp/benchdata/mutate.sh revert >/dev/null
echo "done $TOOL $RUN"
