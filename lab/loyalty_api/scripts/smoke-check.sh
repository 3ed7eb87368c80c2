#!/bin/sh
# runbook-lab stand-in for the repository's ./scripts/smoke-check.sh (the runbook names it and
# what it covers: health/ready/live/metrics): BASE_URL=... METRICS_TOKEN=... ./scripts/smoke-check.sh
# Each endpoint must answer 200 (/metrics with X-Metrics-Token); prints one line per endpoint,
# exits 1 when any fails.
set -u
: "${BASE_URL:?BASE_URL is required}"
failed=0
probe() { # path [header]
    if [ $# -gt 1 ]; then
        code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H "$2" "$BASE_URL$1")
    else
        code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$BASE_URL$1")
    fi
    if [ "$code" = 200 ]; then
        echo "ok   GET $1"
    else
        echo "FAIL GET $BASE_URL$1: HTTP $code" >&2
        failed=1
    fi
}
probe /health
probe /ready
probe /live
probe /metrics "X-Metrics-Token: ${METRICS_TOKEN:-}"
exit $failed
