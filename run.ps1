# Thin wrapper: every decision lives in tools/hitctl.py (shared with run.sh).
#   .\run.ps1 test    lint, types and every test (installs what it needs on first use)
#   .\run.ps1 demo    the whole system on paper, no credentials
#   .\run.ps1 [server|bot]
#   .\run.ps1 paper price ETH-USDT 3050 | .\run.ps1 paper prices   (a running paper server's prices)
#   .\run.ps1 screenshots   (the dashboard's pages as PNGs in docs/screenshots/)
#   .\run.ps1 accounts list|add NAME|set NAME ...|enable|disable|rotate-key NAME   (keys from stdin)
#   .\run.ps1 fleet   (PostgreSQL, the API server with FLEET=true, a worker per egress group)
# Refused with "running scripts is disabled on this system"? Once: Set-ExecutionPolicy -Scope CurrentUser RemoteSigned
# (or: powershell -ExecutionPolicy Bypass -File .\run.ps1 demo).
$ErrorActionPreference = "Stop"
Set-Location -Path $PSScriptRoot
$python = $null
foreach ($candidate in @("py -3", "python3", "python")) {
    $parts = $candidate.Split(" ")
    $exe = $parts[0]
    $pre = @($parts | Select-Object -Skip 1)
    if (Get-Command $exe -ErrorAction SilentlyContinue) {
        & $exe @pre -c "import sys; sys.exit(sys.version_info < (3, 11))" 2>$null
        if ($LASTEXITCODE -eq 0) { $python = @($exe) + $pre; break }
    }
}
if (-not $python) {
    Write-Error "HIT needs Python 3.11 or newer (https://www.python.org/downloads/, tick 'Add to PATH')."
    exit 2
}
$pyExe = $python[0]
$pyPre = @($python | Select-Object -Skip 1)
& $pyExe @pyPre tools/hitctl.py @args
exit $LASTEXITCODE
