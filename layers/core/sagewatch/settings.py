"""Where sagewatch's resources are: physical names read from the environment.

CDK sets one variable per table, bucket and queue on each function (names in
sagewatch.resources); the local runtime sets the same variables in its own process. AWS endpoint
and credentials come from boto3's usual environment (AWS_ENDPOINT_URL points it at moto locally).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sagewatch.resources import DECLARATION, Declaration


class MissingSetting(RuntimeError):
    """A resource name is not configured in the environment."""


@dataclass(frozen=True)
class Settings:
    """Physical resource names by logical name, as this process is configured."""

    names: Mapping[str, str]

    def name(self, logical: str) -> str:
        """The physical name of a logical resource; MissingSetting naming the variable to set otherwise."""
        try:
            return self.names[logical]
        except KeyError:
            env_var = DECLARATION.env_vars().get(logical, logical)
            raise MissingSetting(f"{env_var} is not set: which {logical} resource should be used?") from None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, declaration: Declaration = DECLARATION
    ) -> Settings:
        """The names the environment gives, one variable per declared resource (unset ones left out)."""
        environ = os.environ if environ is None else environ
        names = {
            logical: environ[env_var]
            for logical, env_var in declaration.env_vars().items()
            if env_var in environ
        }
        return cls(names=names)


def physical_names(prefix: str, declaration: Declaration = DECLARATION) -> dict[str, str]:
    """Physical names for a stack whose resources are named `<prefix>-<logical>` (local mode, tests)."""
    return {logical: f"{prefix}-{logical}" for logical in declaration.env_vars()}


def environment_for(names: Mapping[str, str], declaration: Declaration = DECLARATION) -> dict[str, str]:
    """The environment variables that make Settings.from_env() find these physical names."""
    env_vars = declaration.env_vars()
    return {env_vars[logical]: physical for logical, physical in names.items()}
