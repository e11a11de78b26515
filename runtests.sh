#!/usr/bin/env bash
# Run the test suite, then the style check; fail if either fails.
cd "$(dirname "$0")"
python -m pytest "$@"
tests_status=$?
pycodestyle --max-line-length 120 --exclude=.venv,venv,results,.git .
style_status=$?
if [ $tests_status -ne 0 ] || [ $style_status -ne 0 ]; then
    exit 1
fi
