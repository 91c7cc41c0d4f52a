#!/usr/bin/env sh
# Thin wrapper: every decision lives in tools/hitctl.py (shared with run.ps1).
#   ./run.sh test    lint, types and every test (installs what it needs on first use)
#   ./run.sh demo    the whole system on paper, no credentials
#   ./run.sh [server|bot]
#   ./run.sh paper price ETH-USDT 3050 | ./run.sh paper prices   (a running paper server's prices)
#   ./run.sh screenshots   (the dashboard's pages as PNGs in docs/screenshots/)
#   ./run.sh accounts list|add NAME|set NAME ...|enable|disable|rotate-key NAME   (keys from stdin)
#   ./run.sh fleet   (PostgreSQL, the API server with FLEET=true, a worker per egress group)
set -eu
cd "$(dirname "$0")"
for candidate in python3.13 python3.12 python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        exec "$candidate" tools/hitctl.py "$@"
    fi
done
echo "HIT needs Python 3.11 or newer on the PATH (python3 --version)." >&2
exit 2
