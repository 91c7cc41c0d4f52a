# Installs the environment (.venv) and nothing else; .\run.ps1 does this by itself on first use.
$ErrorActionPreference = "Stop"
& "$PSScriptRoot\run.ps1" setup @args
exit $LASTEXITCODE
