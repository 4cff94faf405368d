"""Console output shared by the CLI verbs: Rich for people, plain JSON for programs."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.table import Table

from services.core.covenant.problems import Problem


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_problems(problems: Iterable[Problem], out: Console) -> None:
    """One line per problem, errors in red, warnings in yellow."""
    for problem in problems:
        style = "red" if problem.is_error else "yellow"
        out.print(str(problem), style=style, markup=False)


def table(title: str, columns: Iterable[str]) -> Table:
    result = Table(title=title, title_justify="left")
    for column in columns:
        result.add_column(column, justify="right" if column.startswith("#") else "left")
    return result
