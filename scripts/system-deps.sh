#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real: redis-server (single and Cluster),
# wrk (sidecar benchmark), nginx-light (the sidecar's documented auth_request config, run for
# real), chromium + chromium-driver (browser tests), openssl (the TLS store test's throwaway CA),
# nodejs + npm (the real JavaScript cookie parser and Express app, installed from lockfiles with
# npm ci), php-cli + php-redis (a real PHP app's sessions), default-jdk-headless (javac: Spring
# Session's records written by the JDK's own ObjectOutputStream), prometheus (promtool: the chart's
# alert rules checked and unit-tested).
# Skips what is present.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v openssl >/dev/null || need+=(openssl)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v php >/dev/null || need+=(php-cli)
{ command -v php >/dev/null && php -m 2>/dev/null | grep -qx redis; } || need+=(php-redis)
command -v javac >/dev/null || need+=(default-jdk-headless)
command -v promtool >/dev/null || need+=(prometheus)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${need[*]} (run: sudo apt-get install -y ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
