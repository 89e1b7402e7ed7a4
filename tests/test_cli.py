"""course_utils.cli: every ``python -m course_utils.…`` command refuses bad input in one line, with status 2."""

from __future__ import annotations

import importlib

import pytest

from course_utils.cli import OneLineParser, errors_exit

COMMANDS = ["data", "bundle", "runtime", "authoring", "colab", "workshop", "train"]


def test_errors_exit_turns_the_named_errors_into_an_exit_code(capsys):
    @errors_exit(KeyError, LookupError, code=2)
    def command(fail: type[Exception] | None) -> int:
        """A command."""
        if fail:
            raise fail("no such thing")
        return 0

    assert command(None) == 0 and command.__doc__ == "A command."
    assert command(IndexError) == 2
    assert capsys.readouterr().err == "error: no such thing\n"
    with pytest.raises(ValueError):  # other errors are not swallowed
        command(ValueError)


def test_a_parser_error_is_one_line_with_status_2_in_sub_commands_too(capsys):
    parser = OneLineParser(prog="python -m course_utils.x")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("go").add_argument("--n", type=int)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["go", "--n", "ten"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == ("error: argument --n: invalid int value: 'ten' "
                                       "(python -m course_utils.x go --help lists the options)\n")


@pytest.mark.parametrize("module", COMMANDS)
@pytest.mark.parametrize("argv", [["no-such-command"], ["--no-such-option"]], ids=["command", "option"])
def test_every_command_refuses_bad_input_in_one_line(module, argv, capsys):
    main = importlib.import_module(f"course_utils.{module}").main
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: "), err
    assert f"python -m course_utils.{module}" in err
