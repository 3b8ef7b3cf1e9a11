# Sourced by the kill-*.sh stress scripts: whether a process that must outlive its peers' deaths is still there.
#
#   survivor_check SCRIPT WHAT PID ROUND LOG [AFTER]
#
# returns 0 while PID runs; once it is gone, prints "SCRIPT: WHAT died in round ROUND" and the first UCX fatal or
# assertion line of LOG (its stderr) with AFTER more lines (default 12: UCX's backtrace follows it), and exits 1.
ucx_abort_lines() {
    grep -m1 -A"${2:-12}" "Fatal\|ssert" "$1"
}

survivor_check() {
    local script=$1 what=$2 pid=$3 round=$4 log=$5 after=${6:-12}
    kill -0 "$pid" 2>/dev/null && return 0
    echo "$script: $what died in round $round"
    ucx_abort_lines "$log" "$after"
    exit 1
}
