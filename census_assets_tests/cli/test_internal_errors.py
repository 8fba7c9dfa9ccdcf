"""A bug in census-assets is reported as one, not as the user's fault: exit 70 and one
"internal error" line; --debug adds the traceback. A user's error keeps exit 2."""

import pytest

from census_assets import cli


@pytest.fixture
def buggy_history(monkeypatch):
    def history(args):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    monkeypatch.setattr(cli, "history", history)


def test_a_programming_error_exits_70_with_one_internal_error_line(buggy_history, capsys, tmp_path):
    code = cli.main(["history", "--storage", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == cli.EX_SOFTWARE == 70
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("census-assets history: internal error: TypeError: unsupported operand type(s)")
    assert "--debug" in err


def test_debug_prints_the_traceback(buggy_history, capsys, tmp_path):
    code = cli.main(["history", "--storage", str(tmp_path), "--debug"])
    err = capsys.readouterr().err
    assert code == 70
    assert "Traceback (most recent call last)" in err and "in history" in err


def test_a_users_error_still_exits_2(capsys, tmp_path):
    code = cli.main(["rollback", "--version", "0123456789abcdef", "--storage", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("census-assets rollback: error: ") and "internal error" not in err
