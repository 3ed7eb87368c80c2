#!/bin/sh
# runbook-lab stand-in for the repository's ./scripts/smoke-integrations.sh: the integration
# API's minimal scenario with response limits. BASE_URL, INTEGRATION_API_KEY, SMOKE_USER_TOKEN
# (for /code); SMOKE_MAX_MS_CODE / SMOKE_MAX_MS_BALANCE override the limits; with
# SMOKE_ALLOW_MUTATIONS=1 and SMOKE_OUTLET_ID it also makes a purchase. Exits 1 at the first
# failing step, naming it.
set -u
: "${BASE_URL:?BASE_URL is required}" "${INTEGRATION_API_KEY:?}" "${SMOKE_USER_TOKEN:?}"
body=$(mktemp)
trap 'rm -f "$body"' EXIT
step() { # name method path limit_ms expected_status [json]
    name=$1 method=$2 path=$3 limit=$4 expected=$5
    if [ $# -gt 5 ]; then
        said=$(curl -s -m 10 -o "$body" -w '%{http_code} %{time_total}' -X "$method" \
            -H "X-Api-Key: $INTEGRATION_API_KEY" -H 'Content-Type: application/json' -d "$6" "$BASE_URL$path")
    else
        said=$(curl -s -m 10 -o "$body" -w '%{http_code} %{time_total}' -X "$method" \
            -H "X-Api-Key: $INTEGRATION_API_KEY" "$BASE_URL$path")
    fi
    code=${said%% *}
    ms=$(echo "${said#* }" | awk '{ printf "%d", $1 * 1000 }')
    if [ "$code" != "$expected" ]; then
        echo "FAIL step $name: $method $BASE_URL$path: HTTP $code != $expected $(head -c 200 "$body")" >&2
        exit 1
    fi
    if [ "$ms" -gt "$limit" ]; then
        echo "FAIL step $name: $method $BASE_URL$path took ${ms}ms > ${limit}ms" >&2
        exit 1
    fi
    echo "ok   step $name: HTTP $code in ${ms}ms"
}
step code POST /api/integrations/code "${SMOKE_MAX_MS_CODE:-1500}" 200 "{\"user_token\": \"$SMOKE_USER_TOKEN\"}"
customer=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["customer"]["id"])' "$body") || {
    echo "FAIL step code: no customer.id in the answer" >&2
    exit 1
}
step balance GET "/api/integrations/customers/$customer/balance" "${SMOKE_MAX_MS_BALANCE:-800}" 200
if [ "${SMOKE_ALLOW_MUTATIONS:-0}" = 1 ]; then
    : "${SMOKE_OUTLET_ID:?SMOKE_OUTLET_ID is required with SMOKE_ALLOW_MUTATIONS=1}"
    step purchase POST /api/integrations/purchases "${SMOKE_MAX_MS_PURCHASE:-1500}" 201 \
        "{\"customer_id\": \"$customer\", \"outlet_id\": \"$SMOKE_OUTLET_ID\", \"amount\": 100}"
fi
echo "smoke-integrations: ok"
