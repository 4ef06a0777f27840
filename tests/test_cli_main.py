"""The ``dnatrack`` entry point: every subcommand module is reachable from the command line."""

from __future__ import annotations

import pkgutil

import pytest

import dnatrack.cli
from dnatrack.cli import build_parser, main


def _subcommand_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(dnatrack.cli.__path__)
                  if not info.name.startswith("_"))


def test_every_subcommand_module_is_registered():
    assert set(_subcommand_modules()) == set(dnatrack.cli.SUBCOMMANDS)


@pytest.mark.parametrize(
    "command",
    ["convert", "simulate", "panel-stats", "match", "calibrate", "assign", "self-assign",
     "species", "db", "admin", "serve", "custody", "demo", "worker"],
)
def test_each_documented_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_status:
        build_parser().parse_args([command, "--help"])
    assert exit_status.value.code == 0
    assert f"dnatrack {command}" in capsys.readouterr().out


def test_no_command_prints_usage_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_each_command_is_registered_by_the_module_the_table_names():
    import argparse

    registered = {}
    for name in dnatrack.cli.SUBCOMMANDS:
        subparsers = argparse.ArgumentParser().add_subparsers()
        dnatrack.cli.subcommand_module(name).register(subparsers)
        registered.update(dict.fromkeys(subparsers.choices, name))
    assert registered == dnatrack.cli.COMMAND_MODULES


def test_a_command_line_builds_only_its_commands_parsers():
    parser = build_parser(["self-assign", "x", "--out", "y.csv"])
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {"assign", "self-assign", "assess-reference"}
    args = parser.parse_args(["self-assign", "x", "--out", "y.csv"])
    assert (args.command, args.reference, args.out) == ("self-assign", "x", "y.csv")
    # an option or an unknown word first: every command, so the usage lists them all
    assert set(build_parser(["--version"])._subparsers._group_actions[0].choices) == set(
        dnatrack.cli.COMMAND_MODULES)
    assert set(build_parser(["nonsense"])._subparsers._group_actions[0].choices) == set(
        dnatrack.cli.COMMAND_MODULES)
