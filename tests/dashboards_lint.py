#!/usr/bin/env python3
"""Structure of the shipped Grafana dashboards: unique uids and panel ids, the
${DS_PROMETHEUS} datasource everywhere, a grid position for every panel, and every metric
name used in a query defined by the exporter (src/metrics/). Whether each query returns
data is checked against a real Prometheus by tests/prometheus_rules.rs."""
import json
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
metrics_src = "".join(p.read_text() for p in sorted((root / "src" / "metrics").glob("*.rs")))
defined = set(re.findall(r'"(mailauth_[a-z_]+)"', metrics_src))
passed = failed = 0
problems = []


def check(cond, msg):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        problems.append(msg)


uids = set()
for path in sorted((root / "dashboards").glob("*.json")):
    d = json.loads(path.read_text())
    name = path.name
    check(d.get("uid") and d["uid"] not in uids, f"{name}: missing or duplicate uid")
    uids.add(d.get("uid"))
    check(d.get("schemaVersion", 0) >= 39, f"{name}: schemaVersion below 39")
    check(any(i.get("name") == "DS_PROMETHEUS" for i in d.get("__inputs", [])), f"{name}: no DS_PROMETHEUS input")
    names = [v["name"] for v in d.get("templating", {}).get("list", [])]
    check("domain" in names, f"{name}: no domain variable")
    ids = set()
    exprs = [a["expr"] for a in d.get("annotations", {}).get("list", []) if "expr" in a]
    for p in d["panels"]:
        check(p["id"] not in ids, f"{name}: duplicate panel id {p['id']}")
        ids.add(p["id"])
        check(p.get("datasource", {}).get("uid") == "${DS_PROMETHEUS}", f"{name}: panel {p['title']} datasource")
        check(all(k in p.get("gridPos", {}) for k in "xywh"), f"{name}: panel {p['title']} gridPos")
        check(bool(p.get("targets")), f"{name}: panel {p['title']} has no query")
        for tgt in p.get("targets", []):
            check(tgt.get("expr", "").strip() != "", f"{name}: panel {p['title']} empty expr")
            exprs.append(tgt.get("expr", ""))
    for e in exprs:
        for m in re.findall(r"mailauth_[a-z_]+", e):
            base = re.sub(r"_(bucket|sum|count)$", "", m)
            check(m in defined or base in defined, f"{name}: metric {m} is not defined in src/metrics/")

for p in problems:
    print(p, file=sys.stderr)
print(f"dashboards: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
