# bench/progress.sh — the progress line of include/regfs/progress.h for the benchmark
# scripts (sourced, not run). On stderr, only when stderr is a terminal (REGFS_PROGRESS=0
# turns it off there, REGFS_PROGRESS=1 forces it), so results piped or logged stay clean:
#     bench: 5/12 measurements (41%), 1.2 GiB, 0.3 measurements/s, 98.1 MiB/s, ETA 0:23
# progress_begin WHAT UNIT TOTAL   starts a phase of TOTAL steps
# progress_step [BYTES]            one step done (BYTES moved by it, if any)
# progress_clear                   erase the line before printing to stderr (say does)
# progress_end                     final state and a newline
_p_on=0 _p_w=0

_p_human() {  # bytes → "512 B", "1.5 KiB", "34.5 MiB"
  awk -v b="$1" 'BEGIN { if (b < 1024) { printf "%d B", b; exit }
    split("KiB MiB GiB TiB", u, " "); v = b / 1024; i = 1
    while (v >= 1024 && i < 4) { v /= 1024; i++ }
    printf "%.1f %s", v, u[i] }'
}
_p_usec() { local t=${1/[.,]/}; echo $((10#$t)); }

_progress_draw() {
  [ "$_p_on" = 1 ] || return 0
  local el line pct=""
  el=$(( $(_p_usec "$EPOCHREALTIME") - $(_p_usec "$_p_t0") ))
  [ "$_p_total" -gt 0 ] && pct=" ($(( _p_n * 100 / _p_total ))%)"
  line="$_p_what: $_p_n${_p_total:+/$_p_total} $_p_unit$pct"
  [ "$_p_bytes" -gt 0 ] && line+=", $(_p_human "$_p_bytes")"
  if [ "$el" -ge 50000 ] && [ "$_p_n" -gt 0 ]; then
    line+=", $(awk -v n="$_p_n" -v e="$el" 'BEGIN { printf "%.2g", n * 1e6 / e }') $_p_unit/s"
    [ "$_p_bytes" -gt 0 ] && line+=", $(_p_human $(( _p_bytes * 1000000 / el )))/s"
    if [ "$_p_n" -lt "$_p_total" ]; then
      local s=$(( (_p_total - _p_n) * el / _p_n / 1000000 ))
      line+=$(printf ', ETA %d:%02d' $((s / 60)) $((s % 60)))
    fi
  fi
  printf '\r%s%*s' "$line" $(( _p_w > ${#line} ? _p_w - ${#line} : 0 )) "" >&2
  _p_w=${#line}
}

progress_begin() {
  _p_what=$1 _p_unit=$2 _p_total=$3 _p_n=0 _p_bytes=0 _p_t0=$EPOCHREALTIME _p_w=0
  case ${REGFS_PROGRESS:-} in
    1) _p_on=1 ;;
    0) _p_on=0 ;;
    *) if [ -t 2 ]; then _p_on=1; else _p_on=0; fi ;;
  esac
  _progress_draw
}
progress_step() { _p_n=$((_p_n + 1)); _p_bytes=$((_p_bytes + ${1:-0})); _progress_draw; }
progress_clear() {
  [ "$_p_on" = 1 ] && [ "$_p_w" -gt 0 ] || return 0
  printf '\r%*s\r' "$_p_w" "" >&2
  _p_w=0
}
progress_end() {
  [ "$_p_on" = 1 ] || return 0
  _progress_draw
  printf '\n' >&2
  _p_w=0 _p_on=0
}
