#!/usr/bin/env bash
# Run the test suite, then the style check; fail if either fails. Uses .venv's Python when there is one.
cd "$(dirname "$0")"
PYTHON=python
if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ] && [ -x .venv/bin/python ]; then
    PYTHON=.venv/bin/python
fi
"$PYTHON" -m pytest "$@"
tests_status=$?
"$PYTHON" -m pycodestyle --max-line-length 120 --exclude=.venv,venv,results,.git .
style_status=$?
if [ $tests_status -ne 0 ] || [ $style_status -ne 0 ]; then
    exit 1
fi
