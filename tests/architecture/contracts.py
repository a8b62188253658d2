"""import-linter contract types of our own (see ``[tool.importlinter]`` in pyproject.toml).

``private_names``: no module imports another module's private name (``from .x import _y``).
A name another module needs is part of its module's interface: give it a public name, or
move it to the module that owns the idea. Imports under ``if TYPE_CHECKING:`` count too.
"""

from __future__ import annotations

from importlinter.domain.contract import Contract, ContractCheck

from tests.architecture.report import modules, private_imports


class PrivateNamesContract(Contract):
    """No module imports a private name (one underscore) from another module of the package."""

    type_name = "private_names"

    def check(self, graph, verbose: bool) -> ContractCheck:
        found = private_imports(modules(), type_checking=True)
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        from importlinter.application import output

        for line in check.metadata["found"]:
            output.print_error(f"- {line}")
        output.new_line()
        output.print(
            "Give the name a public name in its module (it is that module's interface), or move "
            "it to the module that owns the idea."
        )
