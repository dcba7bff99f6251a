#!/usr/bin/env bash
# The benchmark of BENCHMARKS.md, from a fresh machine:
#   bench/run.sh [N...]          (default: 1000 10000 domains; run D: 1000 10000 100000)
# Installs what it needs (Debian: knot, knot-dnsutils, knot-module-dnstap, dnsperf, wrk, time,
# python3-matplotlib; PyPI: checkdmarc), builds the release binary, then re-runs itself inside
# a private network namespace (`unshare -n`: loopback only, so nothing can leave the machine or
# collide with other servers) and, for each N:
#   1. generates N synthetic domains as zone files (bench/gen_zones.py) and serves them with
#      knot on 127.0.0.53:53;
#   2. runs the exporter's lint of all N once with knot's dnstap on, to learn exactly which
#      queries it sends (total vs distinct: each name at most once per run);
#   3. measures knot's own query rate with dnsperf replaying exactly those queries;
#   4. times the exporter's lint of all N (wall, CPU, peak RSS) with dnstap off;
#   5. the same lint against knot with one UDP worker (`udp-workers: 1`), the small resolver
#      whose receive queue the exporter's bursts can overflow, with that server's own rate;
#   6. times checkdmarc on the same zones (a sample when N is large, bounded in time), and for
#      the smallest N against the one-worker server too;
#   7. the long-running exporter with a domains file of all N domains: time to the first full
#      run, /metrics size plain and gzip, scrape latency with wrk plain and with
#      `Accept-Encoding: gzip` (as Prometheus scrapes), RSS over several check intervals.
# Then, for N = 10,000 (when it is one of the sizes): two exporters sharing the domains as
# Prometheus's hashmod would split them, each one's queries, RSS and scrape size; and last a
# plot of per-domain time and memory against N (docs/bench-scaling.png, by bench/plot.py).
# Every figure is printed as one `bench:` line and kept in $BENCH_DIR/summary.txt; the plot's
# numbers in $BENCH_DIR/lint.tsv and serve.tsv.
#
# Knobs (environment): BENCH_DIR (default target/bench), CHECKDMARC_SAMPLE (domains given to
# checkdmarc when N is larger, default 1000), CHECKDMARC_MAX_SECONDS (default 600),
# CONCURRENCY (the exporter's `check --concurrency`, default 256), SERVE_INTERVAL (the
# long-running exporter's dns_interval, default 30s; at least N/2000 s so that one run fits in
# an interval), SERVE_INTERVALS (default 4, at least 3), BENCH_PHASES (`serve`: only step 7,
# on the zones an earlier run left in BENCH_DIR), BENCH_PLOT (default docs/bench-scaling.png).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BENCH_DIR=${BENCH_DIR:-$REPO/target/bench}
CHECKDMARC_SAMPLE=${CHECKDMARC_SAMPLE:-1000}
CHECKDMARC_MAX_SECONDS=${CHECKDMARC_MAX_SECONDS:-600}
CONCURRENCY=${CONCURRENCY:-256}
SERVE_INTERVAL=${SERVE_INTERVAL:-30}
SERVE_INTERVALS=${SERVE_INTERVALS:-4}
[ "$SERVE_INTERVALS" -ge 3 ] || SERVE_INTERVALS=3
BENCH_PLOT=${BENCH_PLOT:-$REPO/docs/bench-scaling.png}
DNS_IP=127.0.0.53
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000 10000)
BIN=${BENCH_BIN:-$REPO/target/release/mailauth-exporter}

if [ -z "${BENCH_IN_NETNS:-}" ]; then
  # --- outside: install and build (these need the package registries) ---
  need_apt=()
  command -v knotd >/dev/null 2>&1 || need_apt+=(knot)
  command -v kdig >/dev/null 2>&1 || need_apt+=(knot-dnsutils)
  ls /usr/lib/*/knot/modules-*/dnstap.so >/dev/null 2>&1 || need_apt+=(knot-module-dnstap)
  command -v dnsperf >/dev/null 2>&1 || need_apt+=(dnsperf)
  command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
  [ -x /usr/bin/time ] || need_apt+=(time)
  command -v curl >/dev/null 2>&1 || need_apt+=(curl)
  command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
  /usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1 || need_apt+=(python3-matplotlib)
  command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
  if [ ${#need_apt[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "bench/run.sh: need root to apt-get install ${need_apt[*]}" >&2; exit 1; }
    # Debian's knot package must not start a server of its own on this machine.
    [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  fi
  command -v checkdmarc >/dev/null 2>&1 || python3 -m pip install --quiet checkdmarc
  cargo build --release --quiet
  [ "$(id -u)" -eq 0 ] || { echo "bench/run.sh: unshare -n needs root" >&2; exit 1; }
  mkdir -p "$BENCH_DIR"
  : > "$BENCH_DIR/summary.txt"
  printf 'n\tlint_wall_seconds\tlint_cpu_seconds\tlint_peak_rss_mib\tone_worker_wall_seconds\n' > "$BENCH_DIR/lint.tsv"
  printf 'n\tsteady_rss_mib\tmetrics_bytes\tgzip_bytes\tp99_ms\tgzip_p99_ms\n' > "$BENCH_DIR/serve.tsv"
  {
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "versions: $("$BIN" --version), knot $(knotd --version | awk '{print $NF}'), checkdmarc $(python3 -m pip show checkdmarc 2>/dev/null | awk '/^Version/ {print $2}'), $(dnsperf -h 2>&1 | grep -m1 -o 'DNS Performance Testing Tool.*' || echo dnsperf)"
    echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  } | tee -a "$BENCH_DIR/summary.txt"
  exec env BENCH_IN_NETNS=1 unshare -n "$REPO/bench/run.sh" "${SIZES[@]}"
fi

# --- inside the namespace: loopback only ---
ip link set lo up
KNOT_PID=

say() { echo "bench: $*" | tee -a "$BENCH_DIR/summary.txt"; }

stop_knot() {
  if [ -n "$KNOT_PID" ]; then
    kill "$KNOT_PID" 2>/dev/null || true
    wait "$KNOT_PID" 2>/dev/null || true
    KNOT_PID=
  fi
}
EXPORTER_PID=
SHARD_PIDS=()
cleanup() {
  [ -z "$EXPORTER_PID" ] || kill "$EXPORTER_PID" 2>/dev/null || true
  [ ${#SHARD_PIDS[@]} -eq 0 ] || kill "${SHARD_PIDS[@]}" 2>/dev/null || true
  stop_knot
}
trap cleanup EXIT

# knot_conf DIR TAP [WORKERS]: a knot config serving DIR's zones on 127.0.0.53:53, with
# dnstap of the queries into DIR/queries.tap when TAP=1, and one UDP (and TCP) worker when
# WORKERS=1 (default: knot's own, one per core).
knot_conf() {
  local dir=$1 tap=$2 workers=${3:-}
  {
    echo "server:"
    echo "    listen: $DNS_IP@53"
    if [ "$workers" = 1 ]; then
      echo "    udp-workers: 1"
      echo "    tcp-workers: 1"
    fi
    echo "    rundir: $dir/knot-run"
    echo "database:"
    echo "    storage: $dir/knot-db"
    echo "log:"
    echo "  - target: stderr"
    echo "    any: warning"
    if [ "$tap" = 1 ]; then
      echo "mod-dnstap:"
      echo "  - id: tap"
      echo "    sink: $dir/queries.tap"
      echo "    log-queries: on"
      echo "    log-responses: off"
    fi
    echo "template:"
    echo "  - id: default"
    echo "    storage: $dir/zones"
    echo '    file: "%s.zone"'
    echo "    journal-content: none"
    echo "    zonefile-sync: -1"
    [ "$tap" = 1 ] && echo "    global-module: mod-dnstap/tap"
    echo "zone:"
    sed 's/^/  - domain: /' "$dir/zones.txt"
  } > "$dir/knot.conf"
}

start_knot() {
  local dir=$1 tap=$2 workers=${3:-} zones
  stop_knot
  rm -rf "$dir/knot-run" "$dir/knot-db" "$dir/queries.tap"
  mkdir -p "$dir/knot-run" "$dir/knot-db"
  knot_conf "$dir" "$tap" "$workers"
  knotd -c "$dir/knot.conf" 2> "$dir/knotd.log" &
  KNOT_PID=$!
  zones=$(wc -l < "$dir/zones.txt")
  local deadline=$((SECONDS + 120 + zones / 500))
  until [ "$(knotc -c "$dir/knot.conf" zone-status 2>/dev/null | grep -c 'serial: 1')" -eq "$zones" ]; do
    [ $SECONDS -lt $deadline ] || { echo "knot did not load $zones zones in time" >&2; cat "$dir/knotd.log" >&2; exit 1; }
    sleep 0.5
  done
}

# time_v FILE KEY: a figure from /usr/bin/time -v's report.
time_v() { grep -F "$2" "$1" | awk -F': ' '{print $2}'; }
wall_seconds() { time_v "$1" "Elapsed (wall clock)" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'; }
cpu_seconds() { awk -v u="$(time_v "$1" "User time")" -v s="$(time_v "$1" "System time")" 'BEGIN {printf "%.2f", u+s}'; }
rss_mib() { awk -v k="$(time_v "$1" "Maximum resident set size")" 'BEGIN {printf "%.1f", k/1024}'; }
calc() { awk "BEGIN {printf \"$1\", $2}"; }

lint() { # lint DIR DOMAINS_FILE: the exporter's one-shot lint of every domain
  "$BIN" check --domains-file "$2" --nameserver "$DNS_IP:53" --dkim-selector s1 --dkim-selector s2 \
    --format json --stats --concurrency "$CONCURRENCY" > "$1/exporter.jsonl" 2> "$1/exporter.stderr" || [ $? -eq 1 ]
}

timed_lint() { # timed_lint DIR NAME: the lint, timed by /usr/bin/time -v into DIR/NAME.time
  /usr/bin/time -v -o "$1/$2.time" "$BIN" check --domains-file "$1/domains.txt" \
    --nameserver "$DNS_IP:53" --dkim-selector s1 --dkim-selector s2 --format json --stats \
    --concurrency "$CONCURRENCY" > "$1/$2.jsonl" 2> "$1/$2.stderr" || true
}

bench_size() {
  local n=$1 dir=$BENCH_DIR/$1
  rm -rf "$dir"; mkdir -p "$dir"
  python3 "$REPO/bench/gen_zones.py" --domains "$n" --out "$dir" --key-dir "$BENCH_DIR/keys"
  say "N=$n load $(cut -d' ' -f1-3 /proc/loadavg)"
  say "N=$n zones=$(wc -l < "$dir/zones.txt") zone_bytes=$(find "$dir/zones" -name "*.zone" -exec cat {} + | wc -c)"

  # 1. What the exporter asks, seen by the server.
  start_knot "$dir" 1
  lint "$dir" "$dir/domains.txt"
  stop_knot
  python3 "$REPO/bench/dnstap_queries.py" "$dir/queries.tap" > "$dir/exporter-queries.txt"
  local sent distinct
  sent=$(wc -l < "$dir/exporter-queries.txt")
  distinct=$(sort -u "$dir/exporter-queries.txt" | wc -l)
  say "N=$n exporter dns_queries_received_by_server=$sent distinct_names=$distinct repeated=$((sent - distinct)) queries_per_domain=$(calc %.2f "$sent/$n")"
  say "N=$n exporter own count: $(grep '^stats:' "$dir/exporter.stderr" | sed 's/^stats: //')"

  # 2. The server's own limit, replaying those queries.
  start_knot "$dir" 0
  awk '{print $1, $2}' "$dir/exporter-queries.txt" > "$dir/dnsperf-queries.txt"
  dnsperf -s "$DNS_IP" -p 53 -d "$dir/dnsperf-queries.txt" -l 10 -q 500 > "$dir/dnsperf.txt" 2>&1
  local qps
  qps=$(awk '/Queries per second:/ {print $4}' "$dir/dnsperf.txt")
  say "N=$n knot qps=$qps (dnsperf, 10 s, 500 outstanding, the exporter's $sent queries replayed)"
  local limit
  limit=$(calc %.3f "$sent/$qps")
  say "N=$n dns_limit_seconds=$limit (queries $sent / $qps qps)"

  # 3. The exporter, timed.
  timed_lint "$dir" exporter
  local ewall ecpu erss edps
  ewall=$(wall_seconds "$dir/exporter.time"); ecpu=$(cpu_seconds "$dir/exporter.time"); erss=$(rss_mib "$dir/exporter.time")
  edps=$(calc %.1f "$n/$ewall")
  local unanswered
  unanswered=$(grep -c '"dns.error"' "$dir/exporter.jsonl" || true)
  say "N=$n exporter wall_seconds=$ewall cpu_seconds=$ecpu peak_rss_mib=$erss domains_per_second=$edps reports=$(wc -l < "$dir/exporter.jsonl") with_dns_error=$unanswered"
  say "N=$n exporter wall / dns_limit = $(calc %.2f "$ewall/$limit")"
  say "N=$n exporter $(grep '^stats:' "$dir/exporter.stderr" | sed 's/^stats: //')"

  # 4. The same against a server with one UDP worker: a lost datagram must cost a
  # retransmission timeout, not the whole [dns] timeout.
  start_knot "$dir" 0 1
  dnsperf -s "$DNS_IP" -p 53 -d "$dir/dnsperf-queries.txt" -l 5 -q 500 > "$dir/dnsperf-one-worker.txt" 2>&1
  local qps1
  qps1=$(awk '/Queries per second:/ {print $4}' "$dir/dnsperf-one-worker.txt")
  timed_lint "$dir" exporter-one-worker
  stop_knot
  local owall
  owall=$(wall_seconds "$dir/exporter-one-worker.time")
  say "N=$n one_worker knot qps=$qps1 dns_limit_seconds=$(calc %.3f "$sent/$qps1")"
  say "N=$n one_worker exporter wall_seconds=$owall cpu_seconds=$(cpu_seconds "$dir/exporter-one-worker.time") domains_per_second=$(calc %.1f "$n/$owall") with_dns_error=$(grep -c '"dns.error"' "$dir/exporter-one-worker.jsonl" || true) wall / full_server_wall = $(calc %.2f "$owall/$ewall")"
  say "N=$n one_worker exporter $(grep '^stats:' "$dir/exporter-one-worker.stderr" | sed 's/^stats: //')"
  printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$ewall" "$ecpu" "$erss" "$owall" >> "$BENCH_DIR/lint.tsv"

  # 5. checkdmarc on the same zones, same server (a spread-out sample when N is large).
  local sample=$n
  [ "$n" -le "$CHECKDMARC_SAMPLE" ] || sample=$CHECKDMARC_SAMPLE
  awk -v n="$n" -v s="$sample" 'NR % int(n / s) == 1 || n == s' "$dir/domains.txt" | head -n "$sample" > "$dir/checkdmarc-domains.txt"
  sample=$(wc -l < "$dir/checkdmarc-domains.txt")
  start_knot "$dir" 1
  local crc=0
  timeout "$CHECKDMARC_MAX_SECONDS" /usr/bin/time -v -o "$dir/checkdmarc.time" \
    checkdmarc -n "$DNS_IP" --skip-tls -f json "$dir/checkdmarc-domains.txt" > "$dir/checkdmarc.json" 2> "$dir/checkdmarc.stderr" || crc=$?
  stop_knot
  python3 "$REPO/bench/dnstap_queries.py" "$dir/queries.tap" > "$dir/checkdmarc-queries.txt"
  local csent cdistinct cwall ccpu crss cdps
  csent=$(wc -l < "$dir/checkdmarc-queries.txt"); cdistinct=$(sort -u "$dir/checkdmarc-queries.txt" | wc -l)
  if [ "$crc" -eq 124 ]; then
    say "N=$n checkdmarc did not finish $sample domains within ${CHECKDMARC_MAX_SECONDS}s"
    return
  fi
  cwall=$(wall_seconds "$dir/checkdmarc.time"); ccpu=$(cpu_seconds "$dir/checkdmarc.time"); crss=$(rss_mib "$dir/checkdmarc.time")
  cdps=$(calc %.2f "$sample/$cwall")
  say "N=$n checkdmarc domains=$sample wall_seconds=$cwall cpu_seconds=$ccpu peak_rss_mib=$crss domains_per_second=$cdps dns_queries=$csent distinct_names=$cdistinct queries_per_domain=$(calc %.2f "$csent/$sample") exit=$crc"
  if [ "$sample" -lt "$n" ]; then
    say "N=$n checkdmarc extrapolated_wall_seconds=$(calc %.0f "$n/$cdps") (from $sample domains, linear)"
  fi
  say "N=$n speedup exporter/checkdmarc = $(calc %.1f "$edps/$cdps")x (domains per second)"

  # 6. checkdmarc against the one-worker server, for the smallest N only (it takes as long as
  # step 5 again).
  if [ "$n" = "$smallest" ]; then
    start_knot "$dir" 0 1
    crc=0
    timeout "$CHECKDMARC_MAX_SECONDS" /usr/bin/time -v -o "$dir/checkdmarc-one-worker.time" \
      checkdmarc -n "$DNS_IP" --skip-tls -f json "$dir/checkdmarc-domains.txt" > /dev/null 2> "$dir/checkdmarc-one-worker.stderr" || crc=$?
    stop_knot
    if [ "$crc" -ne 124 ]; then
      local c1wall
      c1wall=$(wall_seconds "$dir/checkdmarc-one-worker.time")
      say "N=$n one_worker checkdmarc domains=$sample wall_seconds=$c1wall domains_per_second=$(calc %.2f "$sample/$c1wall") exit=$crc"
      say "N=$n one_worker speedup exporter/checkdmarc = $(calc %.1f "($n/$owall)/($sample/$c1wall)")x (domains per second)"
    fi
  fi
}

# serve_conf PORT INTERVAL DOMAINS_FILE: the long-running exporter's config.
serve_conf() {
  cat <<EOF
[exporter]
listen_address = "127.0.0.1:$1"
dns_interval = "${2}s"
domains_file = "$3"

[dns]
nameservers = ["$DNS_IP:53"]
EOF
}

# checked URL: how many domains have a result (the SPF check's series, one per domain).
checked() { curl -sf "$1" | grep '^mailauth_dns_check_success{' | grep -c 'check="spf"' || true; }

# wait_checked URL N: until N domains have been checked once.
wait_checked() {
  local deadline=$((SECONDS + 300 + $2 / 100))
  until [ "$(checked "$1")" -ge "$2" ]; do
    [ $SECONDS -lt $deadline ] || { echo "the exporter at $1 did not check $2 domains in time" >&2; exit 1; }
    sleep 1
  done
}

rss_of() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
queries_of() { curl -sf "$1" | awk '/^mailauth_dns_queries_total/ {s+=$2} END {print s}'; }

# ms TEXT: wrk's latency (`25.57ms`, `1.02s`, `830.00us`) in milliseconds.
ms() { awk -v t="$1" 'BEGIN { v = t + 0; if (t ~ /us$/) v /= 1000; else if (t ~ /ms$/) v = v; else if (t ~ /s$/) v *= 1000; printf "%.2f", v }'; }

serve_size() {
  local n=$1 dir=$BENCH_DIR/$1 port=9744
  local interval=$SERVE_INTERVAL
  [ "$interval" -ge $((n / 2000)) ] || interval=$((n / 2000))
  start_knot "$dir" 0
  serve_conf "$port" "$interval" "$dir/domains.txt" > "$dir/serve.toml"
  "$BIN" --config "$dir/serve.toml" --log.level warn 2> "$dir/serve.log" &
  EXPORTER_PID=$!
  local url=http://127.0.0.1:$port/metrics started=$SECONDS
  wait_checked "$url" "$n"
  say "N=$n serve first_full_run_seconds<=$((SECONDS - started)) dns_queries_first_run=$(queries_of "$url")"
  local size gz
  size=$(curl -sf "$url" | wc -c)
  gz=$(curl -sf -H 'Accept-Encoding: gzip' "$url" | wc -c)
  say "N=$n serve metrics_bytes=$size gzip_bytes=$gz series=$(curl -sf "$url" | grep -vc '^#')"
  # RSS once per interval, with scrapes during intervals 2 (plain) and 3 (gzip, as
  # Prometheus asks); each interval includes that interval's checks of all N domains.
  local rss=() i wrk_pid=
  for ((i = 0; i < SERVE_INTERVALS; i++)); do
    if [ "$i" -eq 1 ]; then
      wrk -t1 -c1 -d"$((interval - 2))s" --latency "$url" > "$dir/wrk.txt" &
      wrk_pid=$!
    elif [ "$i" -eq 2 ]; then
      wait "$wrk_pid" 2>/dev/null || true
      wrk -t1 -c1 -d"$((interval - 2))s" --latency -H 'Accept-Encoding: gzip' "$url" > "$dir/wrk-gzip.txt" &
      wrk_pid=$!
    fi
    sleep "$interval"
    rss+=("$(rss_of "$EXPORTER_PID")")
  done
  wait "$wrk_pid" 2>/dev/null || true
  say "N=$n serve rss_mib_per_interval=${rss[*]} (dns_interval ${interval}s; scrapes during intervals 2 and 3)"
  local p99 gp99
  p99=$(awk '$1=="99%" {print $2}' "$dir/wrk.txt"); gp99=$(awk '$1=="99%" {print $2}' "$dir/wrk-gzip.txt")
  say "N=$n serve plain scrapes=$(awk '/requests in/ {print $1}' "$dir/wrk.txt") p50=$(awk '$1=="50%" {print $2}' "$dir/wrk.txt") p99=$p99 (wrk, 1 connection)"
  say "N=$n serve gzip scrapes=$(awk '/requests in/ {print $1}' "$dir/wrk-gzip.txt") p50=$(awk '$1=="50%" {print $2}' "$dir/wrk-gzip.txt") p99=$gp99 (wrk, 1 connection, Accept-Encoding: gzip)"
  say "N=$n serve dns_queries_total=$(queries_of "$url") after $SERVE_INTERVALS+ intervals"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "${rss[-1]}" "$size" "$gz" "$(ms "$p99")" "$(ms "$gp99")" >> "$BENCH_DIR/serve.tsv"
  kill "$EXPORTER_PID"; wait "$EXPORTER_PID" 2>/dev/null || true; EXPORTER_PID=
  stop_knot
}

# shard_size N: two exporters, each given the domains Prometheus's hashmod (modulus 2) keeps
# for it, on the same zones at once; each one's first-run queries, RSS and scrape size.
shard_size() {
  local n=$1 dir=$BENCH_DIR/$1
  /usr/bin/python3 - "$dir/domains.txt" "$dir/shard" <<'PY'
import hashlib, sys
# Prometheus's hashmod: the MD5 of the label value, its low 8 bytes as a big-endian integer.
out = [open(f"{sys.argv[2]}{i}.txt", "w") for i in range(2)]
for line in open(sys.argv[1]):
    d = line.strip()
    if d:
        out[int.from_bytes(hashlib.md5(d.encode()).digest()[8:], "big") % 2].write(d + "\n")
PY
  start_knot "$dir" 0
  SHARD_PIDS=()
  local i
  for i in 0 1; do
    serve_conf $((9745 + i)) "$SERVE_INTERVAL" "$dir/shard$i.txt" > "$dir/shard$i.toml"
    "$BIN" --config "$dir/shard$i.toml" --log.level warn 2> "$dir/shard$i.log" &
    SHARD_PIDS+=($!)
  done
  for i in 0 1; do
    wait_checked "http://127.0.0.1:$((9745 + i))/metrics" "$(wc -l < "$dir/shard$i.txt")"
  done
  # RSS after one more interval of checks (answers from the cache, as in steady state).
  sleep "$SERVE_INTERVAL"
  for i in 0 1; do
    local url=http://127.0.0.1:$((9745 + i))/metrics
    say "N=$n shard $i of 2 domains=$(wc -l < "$dir/shard$i.txt") dns_queries=$(queries_of "$url") rss_mib=$(rss_of "${SHARD_PIDS[$i]}") metrics_bytes=$(curl -sf "$url" | wc -c) gzip_bytes=$(curl -sf -H 'Accept-Encoding: gzip' "$url" | wc -c)"
  done
  kill "${SHARD_PIDS[@]}"; wait "${SHARD_PIDS[@]}" 2>/dev/null || true
  SHARD_PIDS=()
  stop_knot
}

smallest=$(printf '%s\n' "${SIZES[@]}" | sort -n | head -1)
for n in "${SIZES[@]}"; do
  if [ "${BENCH_PHASES:-lint,serve}" != serve ]; then
    bench_size "$n"
  else
    [ -f "$BENCH_DIR/$n/zones.txt" ] || { echo "BENCH_PHASES=serve needs the zones of an earlier run in $BENCH_DIR/$n" >&2; exit 1; }
  fi
  serve_size "$n"
done
for n in "${SIZES[@]}"; do
  [ "$n" != 10000 ] || shard_size "$n"
done
if [ "${#SIZES[@]}" -gt 1 ]; then
  mkdir -p "$(dirname "$BENCH_PLOT")"
  /usr/bin/python3 "$REPO/bench/plot.py" "$BENCH_DIR/lint.tsv" "$BENCH_DIR/serve.tsv" "$BENCH_PLOT"
  say "plot: $BENCH_PLOT"
fi
say "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
