# Set up a development environment on Windows.
$ErrorActionPreference = "Stop"
python -m venv .venv
.\.venv\Scripts\Activate.ps1
pip install -e ".[dev]"
Write-Host "devtools is ready"
