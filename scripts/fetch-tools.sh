#!/usr/bin/env bash
# Placeholder until the chart work lands: fetches pinned helm/kubectl into the given folder.
set -euo pipefail
mkdir -p "${1:-.tools/bin}"
