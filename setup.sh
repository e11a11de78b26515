#!/usr/bin/env bash
# One-command set-up: a virtual environment .venv with the Python packages (or the virtual or conda environment that
# is active already), the German-English dictionary (Debian package trans-de-en) for translation, and Chromium with
# chromium-driver for the browser tests. Re-running it is quick: pip skips what is installed, apt-get runs only when
# a package is missing.
set -euo pipefail
cd "$(dirname "$0")"

if [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
    PYTHON=python
    where="the active environment (${VIRTUAL_ENV:-${CONDA_PREFIX:-}})"
else
    if [ ! -x .venv/bin/python ]; then
        if ! command -v python3 >/dev/null; then
            echo "error: no python3 on the PATH. Install Python 3.10 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)." >&2
            exit 1
        fi
        if ! python3 -m venv .venv; then
            rm -rf .venv
            echo "error: python3 could not make a virtual environment. On Debian or Ubuntu install its venv module:" >&2
            echo "    sudo apt-get install python3-venv" >&2
            echo "then run ./setup.sh again." >&2
            exit 1
        fi
    fi
    PYTHON=.venv/bin/python
    where=".venv"
fi

"$PYTHON" -m pip install --disable-pip-version-check -q -r requirements.txt

# Debian packages, installed only when missing: the dictionary, and a headless Chromium with its driver for the
# attention explorer's browser tests (tests/explorer/test_page_browser.py).
packages=""
if [ ! -f /usr/share/trans/de-en ]; then packages="trans-de-en"; fi
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    packages="$packages chromium chromium-driver"
fi
if [ -n "$packages" ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -q
    # shellcheck disable=SC2086  # the list splits into package names
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $packages
fi

if [ "$where" = ".venv" ]; then
    echo "Set up in .venv: run 'source .venv/bin/activate' to use it (./runtests.sh uses it without)."
else
    echo "Set up in $where."
fi
