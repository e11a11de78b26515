#!/usr/bin/env bash
# One-command set-up on Linux or macOS: a virtual environment .venv with the Python packages (or the virtual or conda
# environment that is active already), then the German-English dictionary (Debian package trans-de-en) for training.
# With --with-browser also Chromium and chromium-driver, for the attention explorer's browser tests (CI uses it).
#
# System packages are installed with apt-get only where it exists and we are root or sudo needs no password (never
# asking for one); elsewhere a note says what is missing, what needs it and how to get it, and the set-up still
# succeeds: the Python packages are all that translating, the held-out sentences and most tests need. Re-running it is
# quick: pip skips what is installed, apt-get runs only when a package is missing.
set -euo pipefail
cd "$(dirname "$0")"

with_browser=no
for argument in "$@"; do
    case $argument in
        --with-browser) with_browser=yes ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "error: unknown option $argument; the only option is --with-browser (see ./setup.sh --help)" >&2; exit 2 ;;
    esac
done

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

# The dictionary is read where the library reads it: $DING_DICTIONARY when set, else Debian's path.
debian_dictionary=/usr/share/trans/de-en
dictionary=${DING_DICTIONARY:-$debian_dictionary}
have_browser() { command -v chromedriver >/dev/null && { command -v chromium >/dev/null ||
    command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; }; }

packages=""
if [ ! -f "$dictionary" ]; then packages="trans-de-en"; fi
if [ $with_browser = yes ] && ! have_browser; then packages="$packages chromium chromium-driver"; fi

# How to run apt-get without asking for a password: as root, or through sudo -n; none where that is impossible.
apt_runner=none
if [ -n "$packages" ] && command -v apt-get >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt_runner=root
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        apt_runner=sudo
    fi
fi
run_apt_get() {
    if [ $apt_runner = root ]; then DEBIAN_FRONTEND=noninteractive apt-get "$@" </dev/null
    else sudo -n env DEBIAN_FRONTEND=noninteractive apt-get "$@" </dev/null; fi
}
if [ $apt_runner != none ]; then
    # shellcheck disable=SC2086  # the list splits into package names
    if ! { run_apt_get update -q && run_apt_get install -y -q $packages; }; then
        echo "warning: apt-get could not install $packages (its messages are above)" >&2
    fi
fi

notes=0
if [ ! -f "$dictionary" ]; then
    notes=1
    echo
    if [ -n "${DING_DICTIONARY:-}" ]; then
        echo "Note: DING_DICTIONARY=$DING_DICTIONARY names no file, so there is no German-English dictionary."
    else
        echo "Note: the German-English dictionary is not installed ($debian_dictionary is missing)."
    fi
    echo "  It is needed for training a translator and for run_translation.py --split train or all; translating, the"
    echo "  shipped held-out sentences (--test, --eval) and the attention explorer work without it."
    if command -v apt-get >/dev/null; then
        echo "  To get it: sudo apt-get install trans-de-en (then leave DING_DICTIONARY unset), or"
    else
        echo "  To get it:"
    fi
    echo "  download de-en.txt from the Ding project at TU Chemnitz and set DING_DICTIONARY=/path/to/de-en.txt"
    echo "  (or give run_translation.py --corpus /path/to/de-en.txt)."
fi
if [ $with_browser = yes ] && ! have_browser; then
    notes=1
    echo
    echo "Note: no Chromium with chromedriver on the PATH; the attention explorer's browser tests are skipped without"
    echo "  them (the other tests run). To get them: on Debian/Ubuntu sudo apt-get install chromium chromium-driver;"
    echo "  elsewhere install Chromium or Google Chrome and the matching chromedriver and put both on the PATH."
fi
if [ $with_browser = no ] && ! have_browser; then
    echo "(No Chromium with chromedriver: the attention explorer's browser tests will be skipped; ./setup.sh" \
         "--with-browser installs them.)"
fi

if [ "$where" = ".venv" ]; then
    echo "Set up in .venv: run 'source .venv/bin/activate' to use it (./runtests.sh uses it without)."
else
    echo "Set up in $where."
fi
if [ $notes = 1 ]; then echo "(The notes above name what is missing; everything else is installed.)"; fi
exit 0
