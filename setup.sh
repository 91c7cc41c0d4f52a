#!/usr/bin/env sh
# Installs the environment (.venv) and nothing else; ./run.sh does this by itself on first use.
set -eu
cd "$(dirname "$0")"
exec ./run.sh setup "$@"
