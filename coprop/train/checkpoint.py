"""Checkpoints in safetensors: weights for inference, and full training state for exact resume.

A training checkpoint holds everything a resumed run needs to continue bit for bit: model, optimizer,
scheduler, GradScaler, the RNG states of every rank (python, numpy, torch, cuda) and the data position
(epoch, step within the epoch; the sampler order is recomputed from (seed, epoch)). Tensors go into the
safetensors body; the rest is JSON in the header metadata, with each tensor replaced by a reference.

Files are written through ``coprop.io.atomic_path`` and older checkpoints are deleted only after the new
one is complete, so a crash or a failed write (disk full, file-size limit) leaves the previous one loadable.
"""
from __future__ import annotations

import json
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from coprop.errors import WeightsError
from coprop.io import atomic_path

FORMAT = "coprop-train-checkpoint-1"
WEIGHTS_FORMAT = "coprop-weights-1"
_NAME = re.compile(r"^step-(\d{8})\.safetensors$")


# ---------------------------------------------------------------- nested state <-> (json, tensors)

def pack(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor inside ``obj`` by {"__tensor__": key} and put the tensor in ``tensors``."""
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}"
        # clone: safetensors refuses tensors that share storage (tied weights, views)
        tensors[key] = obj.detach().to("cpu").clone().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[_key(k), pack(v, f"{prefix}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        kind = "__tuple__" if isinstance(obj, tuple) else "__list__"
        return {kind: [pack(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, np.ndarray):
        return pack(torch.from_numpy(obj.astype(np.int64) if obj.dtype.kind in "ui" else obj), prefix, tensors)
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix} in a checkpoint")


def unpack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {_unkey(k): unpack(v, tensors) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(unpack(v, tensors) for v in obj["__tuple__"])
        if "__list__" in obj:
            return [unpack(v, tensors) for v in obj["__list__"]]
    return obj


def _key(k):
    # optimizer state is keyed by int parameter index; JSON object keys would turn it into a string
    return {"int": k} if isinstance(k, int) else k


def _unkey(k):
    return k["int"] if isinstance(k, dict) else k


# ---------------------------------------------------------------- RNG states

def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {"keys": np_state[1], "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((int(py["version"]), tuple(int(x) for x in py["internal"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"].to(torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        cuda = [s.to(torch.uint8) for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            warnings.warn(f"checkpoint has CUDA RNG states for {len(cuda)} devices, this machine has "
                          f"{torch.cuda.device_count()}; CUDA random streams will differ from the original run")


# ---------------------------------------------------------------- files

def _write_file(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """The one place bytes hit the disk (tests replace it to simulate a failure mid-write)."""
    save_file(tensors, str(path), metadata=metadata)


def save_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Write a nested training state atomically to ``path``."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = pack(state, "s", tensors)
    with atomic_path(path) as tmp:
        _write_file(tensors, tmp, {"format": FORMAT, "state": json.dumps(skeleton)})
    return Path(path)


def load_state(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise WeightsError(f"{path}: not a coprop training checkpoint (format {meta.get('format')!r})")
        tensors = load_file(str(path))
        return unpack(json.loads(meta["state"]), tensors)
    except WeightsError:
        raise
    except Exception as e:  # a truncated or garbled file: the safetensors/JSON error means nothing to a user
        raise WeightsError(f"{path}: checkpoint is corrupt or truncated ({type(e).__name__}: {e}); "
                           "delete it to resume from the previous checkpoint") from e


def checkpoint_path(folder: str | Path, global_step: int) -> Path:
    return Path(folder) / f"step-{global_step:08d}.safetensors"


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Checkpoint files in ``folder``, newest (highest step) first. Temporary files are never listed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def save_checkpoint(folder: str | Path, global_step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``step-<global_step>.safetensors``; only then prune, keeping the ``keep`` newest files."""
    path = save_state(checkpoint_path(folder, global_step), state)
    for old in list_checkpoints(folder)[max(1, keep):]:
        old.unlink(missing_ok=True)
    return path


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete half-written files a killed writer left behind (only ever called by the one writer)."""
    folder = Path(folder)
    stale = list(folder.glob(".step-*.tmp")) if folder.is_dir() else []
    for f in stale:
        f.unlink(missing_ok=True)
    return len(stale)


def latest_checkpoint(folder: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads; a corrupt newer file is skipped with a warning."""
    for path in list_checkpoints(folder):
        try:
            return path, load_state(path)
        except WeightsError as e:
            warnings.warn(f"skipping unreadable checkpoint: {e}")
    return None


# ---------------------------------------------------------------- inference weights

def save_weights(path: str | Path, model: torch.nn.Module, metadata: dict[str, Any]) -> Path:
    """Model weights only (what load_run reads), with JSON metadata (config, stage, metrics)."""
    tensors = {k: v.detach().to("cpu").clone().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        _write_file(tensors, tmp, {"format": WEIGHTS_FORMAT, "meta": json.dumps(metadata, default=str)})
    return Path(path)


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weight file not found; train that stage first (notebook 03/04 or "
                           "`coprop train STAGE --run-dir DIR`)")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        return tensors, json.loads(meta.get("meta", "{}"))
    except Exception as e:
        raise WeightsError(f"{path}: weight file is corrupt or truncated ({type(e).__name__}: {e}); "
                           "re-train that stage (notebook 03/04 or `coprop train`)") from e


def load_weights(path: str | Path, model: torch.nn.Module) -> dict[str, Any]:
    """Load weights strictly into ``model``; a mismatch names the missing and unexpected keys."""
    tensors, meta = read_weights(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = sorted(k for k in set(own) & set(tensors) if own[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        raise WeightsError(
            f"{path}: weights do not match {type(model).__name__} built from the run's config.json "
            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{'...' if len(unexpected) > 5 else ''}, shape mismatch {wrong[:5]}); "
            "re-train the stage or fix config.json")
    model.load_state_dict(tensors, strict=True)
    return meta


def load_submodule(path: str | Path, model: torch.nn.Module, prefix: str) -> int:
    """Copy the ``prefix``-ed tensors of a weight file into the same-named tensors of ``model``
    (e.g. a trained keyframe backbone into the propagator). Returns the number of tensors copied."""
    tensors, _ = read_weights(path)
    own = model.state_dict()
    picked = {k: v for k, v in tensors.items() if k.startswith(prefix)}
    wanted = {k for k in own if k.startswith(prefix)}
    if not picked or set(picked) != wanted or any(own[k].shape != v.shape for k, v in picked.items()):
        raise WeightsError(f"{path}: its {prefix!r} tensors do not match {type(model).__name__}'s "
                           f"({len(picked)} in the file, {len(wanted)} in the model); train both with one config")
    model.load_state_dict(picked, strict=False)
    return len(picked)


def load_matching(path: str | Path, model: torch.nn.Module) -> list[str]:
    """Start ``model`` from a weight file of a smaller model of the same family (e.g. the Audio-Insert Propagator
    from the plain-AOT propagator, paper 4.2): every tensor of the file is copied into the same-named tensor of
    ``model``. Returns the names of ``model``'s tensors the file does not hold (they keep their initialisation).
    WeightsError when a file tensor is missing from ``model`` or has another shape."""
    tensors, _ = read_weights(path)
    own = model.state_dict()
    bad = [k for k, v in tensors.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise WeightsError(f"{path}: {len(bad)} tensor(s) do not fit {type(model).__name__} (first: {bad[0]!r}); "
                           f"train both models with one config")
    model.load_state_dict(tensors, strict=False)
    return [k for k in own if k not in tensors]

