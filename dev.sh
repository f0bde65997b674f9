#!/usr/bin/env bash
# One entry point for a fresh machine that has nothing but Python 3.11+.
#   ./dev.sh run  [kedro run options]   set up, then `kedro run` (default: whole pipeline)
#   ./dev.sh test [pytest options]      set up, then ruff + the test suite
#   ./dev.sh setup                      only create .venv and install everything
# Set PYTHON to choose the interpreter (default python3) and VENV the folder (default .venv).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

setup() {
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "movie_rec needs Python 3.11+, $PYTHON is $("$PYTHON" --version)" >&2; exit 1; }
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local stamp="$VENV/.movie_rec-installed" want
  want=$(cat pyproject.toml dev.sh | "$VENV/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing movie_rec and its dependencies into $VENV ..."
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # The CPU build of torch, unless a torch (e.g. a CUDA build, see README) is already there.
    "$VENV/bin/python" -c 'import torch' 2>/dev/null || "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q -e ".[dev]"
    echo "$want" > "$stamp"
  fi
}

# The report's browser test (tests/test_report_browser.py) lays the report out in headless
# Chromium: Debian's package, installed here where it is missing and we run as root (CI);
# elsewhere the test is skipped with a hint.
browser() {
  command -v chromium >/dev/null && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Chromium (Debian's package) for the report's browser test ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium fonts-dejavu-core >/dev/null
  else
    echo "Chromium is missing: the report's browser test is skipped (apt-get install chromium)" >&2
  fi
}

# The PostgreSQL server the shared-study tests start (tests/models/test_shared_studies.py):
# Debian's package where it is absent and this is root with apt-get; otherwise they skip.
postgres_server() {
  if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; then
    return
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "PostgreSQL is not installed (it needs root and apt-get): its tests will skip" >&2
    return
  fi
  echo "Installing Debian's postgresql for the shared-study tests ..."
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; } >/dev/null 2>&1 ||
    echo "Could not install postgresql: its tests will skip" >&2
}

case "${1:-}" in
  setup) setup ;;
  run) shift; setup; "$VENV/bin/kedro" run "$@" ;;
  test)
    shift; setup; browser; postgres_server
    "$VENV/bin/ruff" check src tests benchmarks
    "$VENV/bin/ruff" format --check src tests benchmarks
    "$VENV/bin/python" -m pytest "$@"
    ;;
  *) echo "usage: ./dev.sh run|test|setup [options]" >&2; exit 2 ;;
esac
