#!/bin/sh
# tether.sh COMMAND...: runs COMMAND until this script's standard input closes, then stops
# it. The end-to-end tests start the exporter and Prometheus through it with a pipe they
# hold for the life of the test process: when that process ends, however it ends, the pipe
# closes and nothing is left running.
"$@" </dev/null &
pid=$!
cat >/dev/null
kill -TERM "$pid" 2>/dev/null
wait "$pid"
