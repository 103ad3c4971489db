"""Every command line in README.md's shell blocks works as written, and every path it names exists.

Each line is checked against the program's own parser, without running it:
`threadline ...` with the CLI's click command (options, arguments and their
types, files that must exist), `sam ...` with the SAM CLI's (in .tools/sam),
`aws SERVICE OPERATION --option ...` with botocore's model of the API,
`make TARGET` with the Makefile's targets, anything else by finding the program.
The cheap ones run for real: `threadline sample` writes its file, and the
other lines are parsed in the folder it wrote to (where `positions.csv` exists).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import typer

from threadline.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SHELL_BLOCK = re.compile(r"^```(?:sh|bash|shell|console)\n(.*?)^```", re.MULTILINE | re.DOTALL)
PATH_NAMED = re.compile(r"(?<![\w./:<-])((?:\.?[\w-]+/)+[\w.-]*)")
NOT_IN_THE_CLONE = ("incoming/", ".threadline/", ".cache/")  # an S3 key prefix, what runs write, make test's bytecode
RUN_FOR_REAL = {"sample"}  # threadline commands cheap and harmless enough to run as written
AWS_GLOBAL_OPTIONS = {"--endpoint-url", "--region", "--profile", "--output", "--query", "--no-cli-pager"}
SAM = ROOT / ".tools" / "sam" / "bin" / "python"


def command_lines() -> list[str]:
    """The README's shell lines: continuations joined, comments and blank lines dropped."""
    lines = []
    for block in SHELL_BLOCK.findall(README.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            if shlex.split(line, comments=True):
                lines.append(line.strip())
    return lines


def _words(line: str) -> list[str]:
    """The command's words: for `NAME=$(command ...)` the command's, with leading `NAME=value` settings dropped."""
    substituted = re.fullmatch(r"\w+=\$\((.*)\)", line.split(" #", 1)[0].strip())
    words = shlex.split(substituted.group(1) if substituted else line, comments=True)
    while len(words) > 1 and re.fullmatch(r"\w+=.*", words[0]):
        words = words[1:]
    return words


def _threadline_lines() -> list[str]:
    return [line for line in command_lines() if Path(_words(line)[0]).name == "threadline"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where the README's cheap commands have run, as written, in order."""
    folder = tmp_path_factory.mktemp("readme")
    for line in _threadline_lines():
        words = _words(line)
        if words[1] in RUN_FOR_REAL:
            program = ROOT / words[0] if "/" in words[0] else Path(shutil.which(words[0]) or words[0])
            done = subprocess.run([str(program), *words[1:]], cwd=folder, capture_output=True, text=True,
                                  timeout=120, check=False)
            assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
    return folder


def test_the_readme_has_the_commands_this_test_checks():
    programs = {Path(_words(line)[0]).name for line in command_lines()}
    assert {"make", "threadline"} <= programs


def test_the_sample_command_writes_the_file_it_says(workspace):
    for line in _threadline_lines():
        words = _words(line)
        if words[1] == "sample":
            out = workspace / words[words.index("--out") + 1]
            rows = int(words[words.index("--rows") + 1])
            assert len(out.read_text(encoding="utf-8").splitlines()) == rows + 1  # the header and the rows


@pytest.mark.parametrize("line", command_lines())
def test_the_readme_command_parses(line, workspace, monkeypatch):
    words = _words(line)
    program = Path(words[0]).name
    if program == "threadline":
        monkeypatch.chdir(workspace)  # where `threadline sample` wrote the files the other lines name
        _parse_threadline(words[1:])
    elif program == "make":
        makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
        targets = set(re.findall(r"^([\w-]+):", makefile, re.MULTILINE))
        named = [word for word in words[1:] if "=" not in word]
        assert set(named) <= targets, f"no such make target in {line!r}; the Makefile has {sorted(targets)}"
        for setting in (word for word in words[1:] if "=" in word):  # VAR=value: the Makefile must read VAR
            assert re.search(rf"\b{re.escape(setting.split('=', 1)[0])}\b", makefile), f"{line!r}: {setting}"
    elif program == "sam":
        _parse_sam(words[1:])
    elif program == "aws":
        _parse_aws(words[1:])
    else:
        assert shutil.which(words[0]) or (ROOT / words[0]).exists(), f"no program {words[0]} for {line!r}"


def test_every_path_the_readme_names_exists():
    """Paths in backticks, and anywhere a path to a file (its last part has an extension)."""
    text = README.read_text(encoding="utf-8")
    quoted = " ".join(re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)))
    named = set(PATH_NAMED.findall(quoted)) | {path for path in PATH_NAMED.findall(text)
                                               if "." in path.rstrip("/").rsplit("/", 1)[-1]}
    missing = [path for path in sorted(named) if not path.startswith(NOT_IN_THE_CLONE) and not (ROOT / path).exists()]
    assert missing == []


def _parse_threadline(args: list[str]) -> None:
    """Resolve the subcommands and parse the rest with the command's own parser (fails on a usage error)."""
    command = typer.main.get_command(app)
    path = ["threadline"]
    while isinstance(command, typer.core.TyperGroup) and args and not args[0].startswith("-"):
        name, *args = args
        found = command.get_command(typer.Context(command), name)
        assert found is not None, f"threadline has no command {' '.join(path[1:] + [name])!r}"
        command, path = found, [*path, name]
    try:
        command.make_context(" ".join(path), list(args))
    except typer.TyperException as exc:  # typer's (vendored click's) usage errors
        pytest.fail(f"{' '.join(path)}: {exc}")


def _parse_sam(args: list[str]) -> None:
    """The SAM CLI's own click command parses the line (it lives in its own virtualenv, .tools/sam)."""
    if not SAM.exists():
        pytest.skip("the SAM CLI is not installed (scripts/setup --with-sam installs it in .tools/sam)")
    script = ("import importlib, sys, click\n"
              "name, *args = sys.argv[1:]\n"
              "command = importlib.import_module(f'samcli.commands.{name}.command').cli\n"
              "try:\n    command.make_context('sam ' + name, args)\n"
              "except click.UsageError as exc:\n    sys.exit(exc.format_message())\n")
    done = subprocess.run([str(SAM), "-c", script, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, f"sam {' '.join(args)}: {done.stderr.strip()}"


def _parse_aws(args: list[str]) -> None:
    """`aws SERVICE OPERATION --member value ...` names an operation and its members in botocore's model."""
    import botocore.session
    from botocore import xform_name

    service, operation, *rest = args
    model = botocore.session.get_session().get_service_model(service)
    operations = {xform_name(name, "-"): name for name in model.operation_names}
    assert operation in operations, f"aws {service} has no operation {operation}"
    shape = model.operation_model(operations[operation]).input_shape
    members = {f"--{xform_name(name, '-')}": name for name in (shape.members if shape else {})}
    given = {word for word in rest if word.startswith("--")}
    assert given - set(members) - AWS_GLOBAL_OPTIONS == set(), f"aws {service} {operation}: unknown options"
    required = {f"--{xform_name(name, '-')}" for name in (shape.required_members if shape else [])}
    assert required <= given, f"aws {service} {operation} needs {sorted(required - given)}"

