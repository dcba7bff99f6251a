#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, each from a scratch corpus seeded from the
# shared test corpus (../shared/corpus beside the repo, or $MAILAUTH_CORPUS) and from the
# repo's own examples. Nothing is written into the repo except fuzz/target (ignored).
#
# Usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 20 s, every target)
# Env:   FUZZ_WORK=dir   scratch corpora and crash artifacts (default: a new temp dir)
#        FUZZ_NO_BUILD=1 run the targets as last built
#        FUZZ_QUICK=1    build unoptimised and without AddressSanitizer: a fraction of the
#                        build time, for CI's short smoke run (panics are still found)
#
# Bounds: -max_len keeps inputs to the size of a real record/header, -rss_limit_mb and
# -malloc_limit_mb turn any unbounded allocation into a reported crash. Each target's
# "runs clean" execution count is printed at the end, and any crash fails the script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
secs="${1:-20}"
shift || true
corpus_src="${MAILAUTH_CORPUS:-$repo/../shared/corpus}"
work="${FUZZ_WORK:-$(mktemp -d -t mailauth-fuzz.XXXXXX)}"
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi
if [ ! -d "$corpus_src" ]; then
  echo "fuzz/run.sh: corpus $corpus_src is missing" >&2
  exit 1
fi

all_targets=(auth_results received_spf verifier_report spf_record dkim_record dmarc_record
  mta_sts tls_rpt_record bimi_record config message dns_response report_input)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

# One seed file per string: the records inside the JSON/YAML vectors, split out so each
# seed is a single record (the fuzzer mutates records, not whole test files).
extract() { # extract PATTERN OUTDIR FILES...
  local pattern="$1" out="$2"
  shift 2
  python3 - "$pattern" "$out" "$@" <<'PY'
import hashlib, re, sys, pathlib
pattern, out, files = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3:]
for f in files:
    text = pathlib.Path(f).read_text(errors="replace")
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|^\s*-?\s*\w*:?\s*(\S.*)$', text, re.M):
        s = next(g for g in m.groups() if g is not None)
        s = s.replace('\\"', '"').replace("\\\\", "\\")
        if re.search(pattern, s, re.I):
            data = s.encode()
            (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
PY
}

seed() { # seed TARGET DIR
  local t="$1" d="$2"
  mkdir -p "$d"
  case "$t" in
    auth_results)
      cp "$corpus_src"/auth-results/*.txt "$d"/ ;;
    received_spf)
      cp "$corpus_src"/auth-results/received-spf/*.txt "$d"/ ;;
    verifier_report)
      printf 'Summary of Results\r\n==========\r\nSPF check:          pass\r\n"iprev" check:      pass\r\nDKIM check:         fail\r\n\r\n----------\r\nSPF check details:\r\n----------\r\nResult:         pass\r\nDNS record(s):\r\n    example.test. TXT "v=spf1 -all"\r\n\r\n==========\r\nOriginal Email\r\n==========\r\n\r\nX-Mailauth-Probe: 0123456789abcdef0123456789abcdef\r\n' > "$d/report" ;;
    spf_record)
      extract '^v=spf1' "$d" "$corpus_src"/spf-suite/*.yml ;;
    dkim_record)
      extract 'v=DKIM1|p=' "$d" "$corpus_src"/records/dkim/*.json "$corpus_src"/records/arc-test-suite/*.yml ;;
    dmarc_record)
      extract 'v=DMARC1|mailto:' "$d" "$corpus_src"/records/dmarc/*.json ;;
    mta_sts)
      printf 'v=STSv1; id=20241124;' > "$d/record"
      printf 'version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmx: *.example.test\r\nmax_age: 604800\r\n' > "$d/policy" ;;
    tls_rpt_record)
      printf 'v=TLSRPTv1; rua=mailto:tls@example.test,https://tlsrpt.example.test/v1' > "$d/record" ;;
    bimi_record)
      printf 'v=BIMI1; l=https://example.test/logo.svg; a=https://example.test/vmc.pem' > "$d/record" ;;
    dns_response)
      # example.test TXT "abc" (id 0x1234), and the same as NXDOMAIN with an SOA.
      printf '\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07example\x04test\x00\x00\x10\x00\x01\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x04\x03abc' > "$d/txt"
      printf '\x12\x34\x81\x83\x00\x01\x00\x00\x00\x01\x00\x00\x07example\x04test\x00\x00\x10\x00\x01\xc0\x0c\x00\x06\x00\x01\x00\x00\x00\x3c\x00\x1e\x02ns\xc0\x0c\x02hm\xc0\x0c\x00\x00\x00\x01\x00\x00\x0e\x10\x00\x00\x02\x58\x00\x01\x51\x80\x00\x00\x00\x3c' > "$d/nxdomain" ;;
    message)
      cp "$corpus_src"/auth-results/*.txt "$d"/
      printf 'From: a@example.test\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nU3VtbWFyeSBvZiBSZXN1bHRz\r\n--b--\r\n' > "$d/mime" ;;
    report_input)
      # The DMARC aggregate and TLS-RPT samples, one gzipped, and an ARF failure report.
      cp "$corpus_src"/reports/cry-inc/dmarc-reports/*.xml "$corpus_src"/reports/phi-ag/*.json "$d"/
      gzip -c "$corpus_src"/reports/cry-inc/dmarc-reports/google.xml > "$d/google.xml.gz"
      printf 'From: a@receiver.example\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: auth-failure\r\nReported-Domain: example.com\r\nSource-IP: 192.0.2.1\r\nAuth-Failure: dmarc\r\n\r\n--b--\r\n' > "$d/arf" ;;
    config)
      cp "$repo"/config.example.toml "$d"/
      cp "$repo"/tests/configs/bad/*.toml "$d"/ ;;
  esac
  # A target with no seed from its corpus still starts (libFuzzer needs one file).
  [ -n "$(ls -A "$d")" ] || printf 'x' > "$d/empty"
}

build_flags=()
profile=release
if [ -n "${FUZZ_QUICK:-}" ]; then
  build_flags=(--dev --sanitizer none)
  profile=debug
fi
[ -n "${FUZZ_NO_BUILD:-}" ] || (cd "$here" && cargo fuzz build "${build_flags[@]}")
bin_dir="$here/target/$(rustc -vV | sed -n 's/^host: //p')/$profile"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"

status=0
summary=()
for t in "${targets[@]}"; do
  c="$work/corpus/$t"
  a="$work/artifacts/$t/"
  seed "$t" "$c"
  mkdir -p "$a"
  log="$work/$t.log"
  echo "fuzz/run.sh: $t for ${secs}s (corpus $c, log $log)"
  # The binaries built above, run directly (a `cargo fuzz run` per target would only
  # check the build again).
  if "$bin_dir/$t" "$c" \
      -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -malloc_limit_mb=512 \
      -timeout=10 -artifact_prefix="$a" -print_final_stats=1 \
      >"$log" 2>&1; then
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{s+=$2} END {print s+0}')
    summary+=("$t: $runs runs clean")
  else
    status=1
    summary+=("$t: FAILED (see $log; inputs in $a)")
    tail -40 "$log" >&2
  fi
done
printf '%s\n' "${summary[@]}"
# A scratch directory of our own is removed when all went well (crash inputs are kept).
if [ $status -eq 0 ] && [ -z "${FUZZ_WORK:-}" ]; then
  rm -rf "$work"
fi
exit $status
