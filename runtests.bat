@echo off
rem Run the test suite, then the style check; fail if either fails.
cd /d "%~dp0"
python -m pytest %*
set TESTS_STATUS=%ERRORLEVEL%
pycodestyle --max-line-length 120 --exclude=.venv,venv,results,.git .
set STYLE_STATUS=%ERRORLEVEL%
if not %TESTS_STATUS%==0 exit /b 1
if not %STYLE_STATUS%==0 exit /b 1
exit /b 0
