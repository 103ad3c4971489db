"""`threadline deploy`: build the functions and the job images, push the images, deploy the stack."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .console import console, fail


class Env(StrEnum):
    dev = "dev"
    prod = "prod"


class BuilderChoice(StrEnum):
    auto = "auto"
    local = "local"
    codebuild = "codebuild"


def deploy(
    env: Annotated[Env, typer.Option("--env", help="The samconfig.toml environment (stack threadline-ENV).")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print every step and AWS call of a first deploy into an empty account; make none.")] = False,
    builder: Annotated[BuilderChoice, typer.Option(
        help="Where the job images are built: a local docker/podman/finch, CodeBuild in the account, or "
             "auto (a local engine when one answers, else CodeBuild).")] = BuilderChoice.auto,
    region: Annotated[str | None, typer.Option(help="AWS region (default: samconfig's, else the profile's).")] = None,
    project: Annotated[Path, typer.Option(help="The threadline clone to deploy.")] = Path("."),
) -> None:
    """Deploy threadline to AWS: functions, job images (pinned by digest) and the stack, in one command."""
    from ..deploy.deployer import Builder, Deployer
    from ..deploy.engine import LocalEngine, answering_engine
    from ..deploy.errors import DeployError
    from ..deploy.journal import Journal
    from ..deploy.sam import SamCli
    from ..deploy.samconfig import SamEnvironment
    from ..lineage.clients import aws_session, explain_aws_error

    root = project.resolve()
    if not (root / "template.yaml").is_file() or not (root / "samconfig.toml").is_file():
        fail(f"{root} is not a threadline clone (no template.yaml and samconfig.toml): run from the clone "
             "or pass --project", 2)
    journal = Journal(dry_run=dry_run, out=lambda line: console.print(line, markup=False, highlight=False))
    try:
        environment = SamEnvironment.load(root / "samconfig.toml", env.value)
        engine_name = None if builder == BuilderChoice.codebuild else answering_engine()
        if builder == BuilderChoice.local and engine_name is None:
            fail("no container engine answers (docker, podman or finch): start one, or use --builder codebuild", 2)
        chosen: Builder = "local" if engine_name is not None else "codebuild"
        journal.out(f"threadline deploy: stack {environment.stack_name} ({env.value}), images built "
                    f"{'with ' + str(engine_name) if engine_name else 'by CodeBuild'}"
                    f"{' (dry run: nothing is called or changed)' if dry_run else ''}")
        session = None if dry_run else aws_session(region=region or environment.region)
        deployer = Deployer(root=root, environment=environment, journal=journal, session=session, builder=chosen,
                            sam=SamCli(root, journal, region=region or environment.region),
                            engine=LocalEngine(engine_name, journal) if engine_name else None)
        deployer.run()
    except DeployError as error:
        fail(str(error), 1)
    except Exception as error:  # an AWS failure is said plainly; anything else is a bug and keeps its traceback
        message = explain_aws_error(error)
        if message is None:
            raise
        fail(message, 1)
