"""The ``fountain`` command line: :mod:`.app` holds the group and the entry point, one module per
group of commands registers onto it.

Heavy modules (torch, llama.cpp, SDKs) are imported inside the commands that need them, so
``fountain --help`` and ``fountain validate`` stay fast.
"""

from fountain.cli import (  # noqa: F401  (each module registers its commands)
    batch_command,
    edge_command,
    evaluate_command,
    privacy_command,
    publish_command,
    report_command,
    run_commands,
    spec_commands,
    studio_command,
)
from fountain.cli.app import cli, main
from fountain.cli.run_commands import FRAMEWORK_CHOICES, PROVIDER_CHOICES, RATER_CHOICES

__all__ = ["FRAMEWORK_CHOICES", "PROVIDER_CHOICES", "RATER_CHOICES", "cli", "main"]
