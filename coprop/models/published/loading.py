"""Reading published checkpoints in their released layouts and loading them strictly.

The original loaders are forgiving in ways that hide mistakes: aot-benchmark's ``load_network`` keeps the
random initial value of every key the file lacks. Here every missing key, every key the model does not
know (unless the release is known to carry it, ``ignorable``) and every shape mismatch is an error that
names the keys (reference/aot-tpavi.md section 0, items 2 and 5).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import torch
from torch import nn

from coprop.errors import WeightsError

# containers the original savers use: aot-benchmark writes {'state_dict', 'optimizer'[, 'scaler']}, some
# forks write {'model': ...}; AVSBench writes the raw state dict
_CONTAINERS = ("state_dict", "model")


def _few(items: list[str], n: int = 12) -> str:
    return ", ".join(items[:n]) + (f" ... ({len(items)} in all)" if len(items) > n else "")


def unwrap_state_dict(obj, *, where: str) -> dict[str, torch.Tensor]:
    """A loaded checkpoint object -> its flat state dict ``{key: tensor}``.

    Accepts a raw state dict or one under ``'state_dict'`` / ``'model'``; strips a leading ``module.``
    (a DistributedDataParallel wrapper) when every key carries it, as the original loaders do.
    Raises WeightsError (naming ``where``) when the object is not a mapping of tensors.
    """
    for wrapper in _CONTAINERS:
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{where}: not a checkpoint of tensors (got {type(obj).__name__}); expected a state "
                           f"dict, or a dict holding one under 'state_dict' or 'model'")
    bad = [str(k) for k, v in obj.items() if not torch.is_tensor(v)]
    if bad:
        raise WeightsError(f"{where}: entries that are not tensors: {_few(bad)}; expected a state dict")
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def read_checkpoint(checkpoint, *, what: str, file_name: str, source: str) -> tuple[dict[str, torch.Tensor], str]:
    """``checkpoint`` (a path, or an already loaded dict) -> (state dict, a description of where it came from).

    A missing file is a WeightsError that names it, the released file name and where that file comes from;
    an unreadable file is a WeightsError naming the file and the reader's complaint.
    """
    if isinstance(checkpoint, Mapping):
        return unwrap_state_dict(checkpoint, where=f"{what} checkpoint (dict)"), f"{what} checkpoint (dict)"
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise WeightsError(f"{path}: {what} checkpoint not found (expected file: {file_name}). "
                           f"Source: {source}. Pass the path of that file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated download, not a torch file, pickled classes...
        raise WeightsError(f"{path}: cannot read the {what} checkpoint ({type(e).__name__}: {e}); re-download "
                           f"{file_name} from {source}") from e
    return unwrap_state_dict(obj, where=str(path)), str(path)


def _is_ignorable(key: str, ignorable: Iterable[str]) -> bool:
    # an entry ending in '.' is a prefix (a whole unused sub-module), anything else an exact key
    return any(key.startswith(p) if p.endswith(".") else key == p for p in ignorable)


def strict_load(module: nn.Module, state_dict: Mapping[str, torch.Tensor], *, name: str,
                ignorable: Iterable[str] = (), where: str | None = None) -> nn.Module:
    """Load ``state_dict`` into ``module`` strictly and return it in eval mode, float32.

    ``ignorable``: keys the release is known to carry that the model does not use (exact keys, or prefixes
    ending in '.'); they are dropped. Every other difference raises WeightsError naming ``where`` (the
    file) and the model ``name``: missing keys (all named), unknown keys, and shape mismatches
    (key, checkpoint shape, model shape).
    """
    where = where or f"{name} checkpoint"
    ignorable = tuple(ignorable)
    own = module.state_dict()
    state = {k: v for k, v in state_dict.items() if k in own or not _is_ignorable(k, ignorable)}
    missing = sorted(set(own) - set(state))
    unknown = sorted(set(state) - set(own))
    shapes = [f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(own[k].shape)})"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_few(missing, 40)}")
    if unknown:
        problems.append(f"{len(unknown)} unknown key(s): {_few(unknown, 40)}")
    if shapes:
        problems.append(f"{len(shapes)} wrong shape(s): {_few(shapes, 40)}")
    if problems:
        raise WeightsError(f"{where}: does not match the published {name} model: " + "; ".join(problems)
                           + ". Check that the file is the released checkpoint of this model.")
    module.load_state_dict(state, strict=True)
    return module.float().eval()
