#!/usr/bin/env bash
# One-command set-up: Python packages, and the German-English dictionary (Debian package trans-de-en) for translation.
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install -r requirements.txt
if [ ! -f /usr/share/trans/de-en ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y trans-de-en
fi
