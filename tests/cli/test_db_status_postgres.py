from __future__ import annotations

import pytest

from tests.cli.conftest import Cli


@pytest.mark.parametrize("fresh_database_url", ["postgresql"], indirect=True)
def test_status_hides_the_database_password(cli: Cli) -> None:
    # Trust auth ignores the password, so the command still connects and prints the URL.
    url = cli.env["PAYCORE_DATABASE_URL"].replace("postgres@", "postgres:s3cr3tpw@")
    output = cli("db", "status", env={"PAYCORE_DATABASE_URL": url})
    assert "s3cr3tpw" not in output
    assert "postgres:***@" in output
