#!/usr/bin/env bash
# promtool on the shipped alert rules: syntax (check rules) and behaviour (test rules);
# amtool on the shipped Alertmanager config.
set -euo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
for rules in alerts/*.rules.yml; do
  if promtool check rules "$rules"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
for t in alerts/tests/*.yml; do
  if promtool test rules "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
if (cd examples && promtool check config prometheus.yml); then passed=$((passed + 1)); else failed=$((failed + 1)); fi
# The shipped Alertmanager route (tests/e2e_mail.rs runs it, scenario 11).
if amtool check-config examples/alertmanager.yml; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "promtool: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
