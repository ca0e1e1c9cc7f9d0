#!/usr/bin/env bash
# Sends N requests (default 300) to the gateway at http://127.0.0.1:8080,
# each GET /users/{id}, and counts the instances that answered them; a
# request that failed counts as "failed".
set -euo pipefail
N="${1:-300}"
for i in $(seq 1 "$N"); do
  curl -s --fail-with-body "http://127.0.0.1:8080/users/$(( (i % 1000) + 1 ))" || printf '"servedBy":"failed"'
  echo
done | grep -o '"servedBy":"[^"]*"' | sort | uniq -c
