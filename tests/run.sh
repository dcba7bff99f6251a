#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs them.
# Usage: tests/run.sh            (README's test command; .ci/run calls it)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v dovecot >/dev/null 2>&1 || need_apt+=(dovecot-imapd dovecot-lmtpd)
[ -e /usr/lib/dovecot/lmtp ] || need_apt+=(dovecot-lmtpd)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# DNSSEC for DANE (tests/dane_dnssec.rs): knot signs a zone (knotd, keymgr), unbound validates.
command -v knotd >/dev/null 2>&1 || need_apt+=(knot)
command -v keymgr >/dev/null 2>&1 || need_apt+=(knot)
command -v unbound >/dev/null 2>&1 || need_apt+=(unbound)
# libfuzzer-sys (fuzz/) builds libFuzzer from C++.
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
# The test submission server (tests/servers/smtp_relay.py): Debian's aiosmtpd first (a
# Python that refuses system-wide pip installs, PEP 668, still gets it); pip below only
# where Debian's package is not to be had.
python3 -c 'import aiosmtpd' 2>/dev/null || need_apt+=(python3-aiosmtpd)
# The Debian package (tests/deb_package.rs): cargo-deb asks dpkg-shlibdeps (dpkg-dev) for
# the library dependencies; lintian checks the package; systemd-analyze verifies the unit,
# looking up its Documentation=man: page with man (man-db).
command -v dpkg-shlibdeps >/dev/null 2>&1 || need_apt+=(dpkg-dev)
command -v lintian >/dev/null 2>&1 || need_apt+=(lintian)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v man >/dev/null 2>&1 || need_apt+=(man-db)
[ -x /bin/kill ] || need_apt+=(procps)   # the unit's ExecReload, verified in a scratch root
# The landing pages in a real browser (tests/browser.rs): Chromium, headless, through
# chromedriver.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: need root to apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
  # Debian's packages must not start their services on this machine.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The python3 on PATH may not be Debian's (a pyenv one does not see Debian's modules).
python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet 'aiosmtpd==1.4.6'

# cargo-deb builds the package in tests/deb_package.rs; the version it was tested with.
# (A few minutes of build on a 2-core machine, once.)
command -v cargo-deb >/dev/null 2>&1 || cargo install --locked cargo-deb --version 3.8.0

if [ ! -d ../shared/corpus ]; then
  echo "tests/run.sh: ../shared/corpus is missing (the corpus tests read it)" >&2
  exit 1
fi

# The end-to-end mail bed (tests/e2e/bed.sh: knot, Postfix, rspamd, Dovecot, the echo
# verifier). tests/e2e_mail.rs starts it when it first needs it; it is stopped on exit.
bash tests/e2e/bed.sh install
trap 'bash tests/e2e/bed.sh stop' EXIT

mkdir -p target
# Every test binary runs, so one failure does not hide the ones after it.
set +e
cargo test --no-fail-fast 2>&1 | tee target/test-output.txt
cargo_status=${PIPESTATUS[0]}
set -e
rust_passed=$(grep -E '^test result:' target/test-output.txt | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s+=$1} END {print s+0}')
rust_failed=$(grep -E '^test result:' target/test-output.txt | sed -E 's/.* ([0-9]+) failed.*/\1/' | awk '{s+=$1} END {print s+0}')
bash tests/promtool.sh
python3 tests/dashboards_lint.py
# The layers of src/ (README, "Architecture"): no import cycle between top-level modules,
# and checks/ and resolver/ import nothing above them.
python3 tests/module_graph.py
# The fuzz targets, a short bounded run each (README, "Fuzzing", says how to run longer).
if [ "${FUZZ_SECONDS:-15}" != 0 ]; then
  # Quick build (no ASan, unoptimised): 9 of CI's minutes otherwise. README, "Fuzzing",
  # runs the full build.
  MAILAUTH_CORPUS="$(pwd)/../shared/corpus" FUZZ_QUICK="${FUZZ_QUICK-1}" bash fuzz/run.sh "${FUZZ_SECONDS:-15}"
fi

echo "cargo test: ${rust_passed} passed, ${rust_failed} failed"
echo "${rust_passed} passed, ${rust_failed} failed"
exit "$cargo_status"
