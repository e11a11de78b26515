@echo off
setlocal
rem Run the test suite, then the style check; fail if either fails. Uses .venv's Python when there is one.
cd /d "%~dp0"
set PYTHON=python
if "%VIRTUAL_ENV%%CONDA_PREFIX%"=="" if exist .venv\Scripts\python.exe set PYTHON=.venv\Scripts\python.exe
%PYTHON% -m pytest %*
set TESTS_STATUS=%ERRORLEVEL%
%PYTHON% -m pycodestyle --max-line-length 120 --exclude=.venv,venv,results,.git .
set STYLE_STATUS=%ERRORLEVEL%
if not %TESTS_STATUS%==0 exit /b 1
if not %STYLE_STATUS%==0 exit /b 1
exit /b 0
