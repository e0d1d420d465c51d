"""`make fuzz`: the schemathesis test of tests/test_schemathesis.py with a big budget, unseeded, on
SQLite and on PostgreSQL (which must be running: PAYCORE_TEST_POSTGRES_URL). Prints how many
requests were generated and how many were answered with a 5xx, per database; fails unless each
database got at least 5,000 requests and not one 5xx.

    .venv/bin/python scripts/fuzz.py            # PAYCORE_FUZZ_EXAMPLES=N to change the budget
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Examples per operation and generation phase: operations with few distinct requests run out early,
# so this gives about 5,500 requests per database.
EXAMPLES = os.environ.get("PAYCORE_FUZZ_EXAMPLES", "80")
MINIMUM_REQUESTS = 5000


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "fuzz.jsonl"
        env = {
            **os.environ,
            "PAYCORE_FUZZ_EXAMPLES": EXAMPLES,
            "PAYCORE_FUZZ_REPORT": str(report),
            "PAYCORE_TEST_REQUIRE_POSTGRES": "1",
        }
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:logging"]
        command += ["--show-capture=no", "tests/test_schemathesis.py"]
        code = subprocess.call(command, env=env, cwd=ROOT)
        rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    print()
    for row in rows:
        print(f"fuzz {row['backend']}: {row['requests']} generated requests, {row['5xx']} answered 5xx")
    short = [row["backend"] for row in rows if row["requests"] < MINIMUM_REQUESTS]
    if short:
        print(f"fewer than {MINIMUM_REQUESTS} requests on {', '.join(short)}: raise PAYCORE_FUZZ_EXAMPLES")
    failed = code != 0 or len(rows) != 2 or bool(short) or any(row["5xx"] for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
