"""DDP on CPU: two gloo processes train the same model; weights stay identical across ranks, the data is
sharded without overlap, and a run interrupted mid-epoch resumes bit-exactly under DDP too."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from coprop.train.order import epoch_batches

sys.path.insert(0, str(Path(__file__).parent))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    sys.path.insert(0, str(Path(__file__).parent))
    from train_toy import run_toy

    from coprop.train.checkpoint import save_weights

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        out = Path(out)
        one = run_toy(out / "one_step", epochs=1, batch_size=2, checkpoint_every=0, evaluate=False,
                      max_steps_per_epoch=1)
        save_weights(out / f"one_rank{rank}.safetensors", one.model, {})
        full = run_toy(out / "full", epochs=2, batch_size=2, checkpoint_every=2)
        save_weights(out / f"full_rank{rank}.safetensors", full.model, {})
        try:
            run_toy(out / "resumed", epochs=2, batch_size=2, checkpoint_every=2, on_step_end=_stop_at_5)
        except _Stop:
            pass
        resumed = run_toy(out / "resumed", epochs=2, batch_size=2, checkpoint_every=2)
        assert resumed.resumed_from is not None
        save_weights(out / f"resumed_rank{rank}.safetensors", resumed.model, {})
    finally:
        dist.destroy_process_group()


class _Stop(Exception):
    pass


def _stop_at_5(step: int) -> None:
    if step == 5:
        raise _Stop


def test_sharding_is_disjoint_and_equal_sized():
    r0 = epoch_batches(11, 2, seed=3, epoch=1, rank=0, world_size=2)
    r1 = epoch_batches(11, 2, seed=3, epoch=1, rank=1, world_size=2)
    assert len(r0) == len(r1) and [len(b) for b in r0] == [len(b) for b in r1]
    seen = [i for b in r0 + r1 for i in b]
    assert set(seen) == set(range(11)) and len(seen) == 12        # one sample repeated to even out the ranks
    assert epoch_batches(11, 2, seed=3, epoch=2, rank=0, world_size=2) != r0   # reshuffled each epoch
    assert epoch_batches(11, 2, seed=3, epoch=1, rank=0, world_size=2) == r0   # and reproducible


@pytest.mark.slow
def test_two_gloo_processes_train_identically_and_resume_exactly(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    full0, full1 = load_file(tmp_path / "full_rank0.safetensors"), load_file(tmp_path / "full_rank1.safetensors")
    res0, res1 = (load_file(tmp_path / f"resumed_rank{r}.safetensors") for r in (0, 1))
    for k in full0:
        assert torch.equal(full0[k], full1[k]), f"ranks disagree on {k}"
        assert torch.equal(res0[k], full0[k]), f"DDP resume changed {k}"
        assert torch.equal(res1[k], full1[k])
    # only rank 0 writes: one checkpoint folder and one metrics file, with both ranks' samples counted
    rows = (tmp_path / "full" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("stage,epoch,loss")
    # one optimizer step moved the weights away from their initialisation, identically on both ranks
    from train_toy import ToyNet

    torch.manual_seed(0)
    init = ToyNet().state_dict()
    one0, one1 = load_file(tmp_path / "one_rank0.safetensors"), load_file(tmp_path / "one_rank1.safetensors")
    assert all(torch.equal(one0[k], one1[k]) for k in one0)
    assert all(not torch.equal(init[k], one0[k]) for k in init)
