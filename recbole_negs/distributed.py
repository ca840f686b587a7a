"""Multi-process training on RecBole's distributed path (torch.distributed), with gloo on CPU.

RecBole hard-codes nccl and CUDA devices, and its process launcher lives in ``recbole.quick_start`` (which
imports ray), so the plugin has its own launcher and device set-up. Processes are started either by that
launcher (``--nproc``, and RecBole's ``--world_size``/``--group_offset``/``--ip``/``--port`` for one command per
machine) or by ``torchrun``, whose environment is read into the same RecBole keys. Samplers keep their state outside the
model (never in DDP buffers, which rank 0 re-broadcasts); what must agree across processes is reduced here.
"""

import os

import torch
import torch.distributed as dist


def torchrun_keys():
    """RecBole's process keys (local_rank, offset, world_size, nproc, ip, port) from the environment that
    torchrun gives each process, or None outside torchrun (or for a single process).

    torchrun numbers the processes of a machine contiguously, so RANK - LOCAL_RANK is RecBole's ``offset`` (the
    first global rank on this machine). MASTER_ADDR:MASTER_PORT is torchrun's own store; torch.distributed
    joins it as a client in every process (TORCHELASTIC_USE_AGENT_STORE), so RecBole's tcp:// start works."""
    env = os.environ
    if not all(name in env for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE")) or int(env["WORLD_SIZE"]) < 2:
        return None
    rank, local_rank = int(env["RANK"]), int(env["LOCAL_RANK"])
    return {"local_rank": local_rank, "offset": rank - local_rank, "world_size": int(env["WORLD_SIZE"]),
            "nproc": int(env.get("LOCAL_WORLD_SIZE", 1)), "ip": env.get("MASTER_ADDR", "localhost"),
            "port": str(env.get("MASTER_PORT", "29500"))}


def under_torchrun(config_dict, model, nproc=1):
    """``config_dict`` with torchrun's process keys when this process was started by torchrun (the folders all
    processes write into made first), else None. The plugin's own launcher would start processes inside each
    of torchrun's, so ``nproc > 1`` is refused there."""
    keys = torchrun_keys()
    if keys is None:
        return None
    if nproc > 1:
        from recbole_negs.errors import ConfigError

        raise ConfigError(f"--nproc={nproc} under torchrun: torchrun starts the processes (--nproc_per_node), "
                          "so leave --nproc out")
    config_dict = {**(config_dict or {}), **keys}
    prepare_folders(config_dict, model)
    return config_dict


def is_main_process():
    """Rank 0 of the whole job (every process of a single-process run)."""
    return not active() or dist.get_rank() == 0


def active():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init_cpu_process_group(final):
    """gloo on CPU for ``final`` (RecBole's final config dict): one process per rank, one thread each."""
    dist.init_process_group(backend="gloo", rank=final["local_rank"] + final["offset"],
                            world_size=final["world_size"], init_method=f"tcp://{final['ip']}:{final['port']}")
    torch.set_num_threads(1)
    final["device"] = torch.device("cpu")
    final["single_spec"] = False
    if final["local_rank"] != 0:
        final["state"], final["show_progress"], final["verbose"] = "error", False, False


def mean(value):
    """The mean of a float over the processes (the value itself in a single process)."""
    if not active():
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor) / dist.get_world_size()


def sum_dict(values):
    """Element-wise sums of a dict of numbers over the processes."""
    if not active() or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(tensor)
    return dict(zip(keys, tensor.tolist()))


def gather(obj):
    """Every process's ``obj``, in rank order."""
    if not active():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def same_as_rank0(obj):
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_(tensor):
    """Overwrite ``tensor`` in place with rank 0's copy (a no-op in a single process)."""
    if active():
        dist.broadcast(tensor, src=0)
    return tensor


def merge_rows(touched, *tables):
    """Per row (e.g. per user), every table takes the values of the lowest-ranked process that touched the
    row, or keeps its own where none did; afterwards all processes hold the same tables."""
    if not active():
        return
    world = dist.get_world_size()
    flags = [torch.zeros_like(touched) for _ in range(world)]
    dist.all_gather(flags, touched)
    owner = torch.full(touched.shape, -1, dtype=torch.long, device=touched.device)
    for rank in reversed(range(world)):
        owner[flags[rank]] = rank
    for table in tables:
        copies = [torch.zeros_like(table) for _ in range(world)]
        dist.all_gather(copies, table.contiguous())
        for rank in range(world):
            rows = owner == rank
            table[rows] = copies[rank][rows]


def barrier():
    if active():
        dist.barrier()


def spawn(worker, nproc, args):
    """Start ``nproc`` processes running ``worker(rank, *args)`` and wait for them."""
    import torch.multiprocessing as mp

    mp.spawn(worker, args=args, nprocs=nproc, join=True)


def prepare_folders(config_dict, model):
    """Folders every process writes into, made once before they start (two processes racing to create the
    same folder is an error in RecBole's ensure_dir)."""
    folders = [config_dict.get("checkpoint_dir", "saved"), "log", "log_tensorboard"]
    if isinstance(model, str):
        folders.append(os.path.join("log", model))
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
