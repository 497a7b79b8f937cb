"""``coprop`` command line. Each subcommand lives beside the code it drives and parses its own arguments."""
from __future__ import annotations

import importlib
import sys

from coprop.errors import CopropError

# name -> (module, function, one-line help); the function takes argv (list[str]) and returns an exit code
COMMANDS: dict[str, tuple[str, str, str]] = {
    "synth": ("coprop.data.synth", "cli", "write the synthetic source-conversion benchmark"),
    "check-data": ("coprop.data.check", "cli", "scan a dataset tree and list every problem"),
    "evaluate": ("coprop.evaluate", "cli", "score any method's predicted masks with the official metrics"),
    "run-notebooks": ("coprop.runner", "cli", "execute notebooks through papermill into reports/"),
    "demo": ("coprop.demo", "cli", "the main job: synthetic data, training, notebooks, reports"),
    "infer": ("coprop.infer", "cli", "segment your own video with a trained run"),
    "train": ("coprop.train", "cli", "train a model stage from the command line"),
}


def _usage() -> str:
    lines = ["usage: coprop COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:<14} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "coprop COMMAND --help shows a command's arguments."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"coprop: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[name]
    try:
        return int(getattr(importlib.import_module(module), func)(rest) or 0)
    except CopropError as e:
        print(f"coprop {name}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"coprop {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
