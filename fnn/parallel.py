"""Data parallelism with `jax.sharding`: each mini-batch split over devices, everything else copied.

``fit(..., devices=4)`` runs the very same step as on one device. What changes is where arrays
live, on a 1-D device mesh whose one axis is called ``"batch"``:

    mini-batch (B, ...)           sharded: device i holds samples i*B/n ... (i+1)*B/n - 1
    params, state, opt_state      replicated: every device holds the whole TrainState
    training / test set (N, ...)  replicated, so an epoch's shuffled gather ``x[idx]`` is local

`jax.jit` propagates the shardings: each device runs the forward and backward pass on its B/n
samples, and the sums over the batch in the loss and the gradients become all-reduces that XLA
inserts, so every device applies the same update to its copy of the parameters. With n devices
the result equals the one-device run up to the order of those float additions. Batch norm's
batch statistics are taken over the whole mini-batch (the all-reduce again), not per device.

`fnn.lm.fit_lm(devices=...)` splits its batches of sequences the same way (each device carries
the recurrent state of its sequences); `fnn.multi.fit_many(devices=...)` splits its M models
instead (device i trains models i*M/n ... (i+1)*M/n - 1 on its copy of the data; the devices
exchange nothing until the results, gathered once at the end).

Several processes (hosts of a GPU cluster, a TPU slice, or processes on one machine): each calls
`jax.distributed.initialize` before JAX touches a device; then `jax.devices()` lists every
process's devices, a mesh over them all (``jax.make_mesh((jax.device_count(),), ("batch",))``, or
``devices=jax.device_count()``) spans the processes, and every process runs the same `fit` with
the same data, key and arguments. Arguments are copied onto each process's devices
(`replicate`), results come back whole to every process (`to_host`), so every process ends with
the same parameters and history, those of a one-process run up to float rounding. On one machine
with CPUs, two processes (gloo does the CPU collectives: ``jax_cpu_collectives_implementation``,
"gloo" by default in jax 0.10)::

    # train.py, started twice: python train.py 0 & python train.py 1
    import sys
    import jax
    jax.distributed.initialize(coordinator_address="127.0.0.1:12355", num_processes=2,
                               process_id=int(sys.argv[1]))
    ...   # load the data, build the model
    ts, history = fit(model, optimizer, data, key=jax.random.key(0), devices=jax.device_count(),
                      progress=jax.process_index() == 0)

tests/test_multiprocess.py trains with `fit`, `fit_lm` and `fit_many` this way in two processes
and compares them with a one-process run; docs/PARALLEL.md has the GPU and TPU recipes.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

# The name of the mesh axis that the mini-batch is split over.
AXIS = "batch"


def batch_mesh(devices, fn: str = "fit") -> Mesh | None:
    """The mesh that `devices` describes; None stands for one device, as without sharding.

    `devices` is None, a device count n (the first n of `jax.devices()`), a sequence of
    `jax.Device`, or a `jax.sharding.Mesh` with an axis named ``"batch"`` (any other axes of it
    hold copies: the batch is split over ``"batch"`` only).
    """
    if devices is None:
        return None
    if isinstance(devices, Mesh):
        if AXIS not in devices.axis_names:
            raise ValueError(f"{fn}: devices is a Mesh with axes {devices.axis_names}, expected one "
                             f"named {AXIS!r} to split the batch over")
        if any(t != AxisType.Auto for t in devices.axis_types):  # shardings are left to jit
            devices = Mesh(devices.devices, devices.axis_names,
                           axis_types=(AxisType.Auto,) * len(devices.axis_names))
        return devices
    available = jax.devices()
    if isinstance(devices, int) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"{fn}: devices is {devices}, expected a count from 1 to {len(available)} (the "
                f"devices JAX sees: {len(available)} {available[0].platform}; on CPU, "
                f"XLA_FLAGS=--xla_force_host_platform_device_count=N before importing jax gives N)")
        return jax.make_mesh((devices,), (AXIS,), (AxisType.Auto,), devices=available[:devices])
    if (isinstance(devices, Sequence) and not isinstance(devices, str) and devices
            and all(isinstance(d, jax.Device) for d in devices)):
        if len(set(devices)) != len(devices):
            raise ValueError(f"{fn}: devices lists a device twice ({list(devices)}), expected "
                             f"distinct devices")
        return Mesh(np.array(devices), (AXIS,), axis_types=(AxisType.Auto,))
    raise TypeError(f"{fn}: devices is {devices!r}, expected None, a device count, a list of "
                    f"jax.Device or a jax.sharding.Mesh with a {AXIS!r} axis")


def num_shards(mesh: Mesh) -> int:
    """How many pieces a mini-batch is cut into: the size of the mesh's ``"batch"`` axis."""
    return mesh.shape[AXIS]


def check_batch_size(fn: str, name: str, batch_size: int, mesh: Mesh | None) -> None:
    """Raise ValueError unless `batch_size` splits evenly over the mesh's ``"batch"`` axis."""
    if mesh is not None and batch_size % num_shards(mesh):
        n = num_shards(mesh)
        raise ValueError(f"{fn}: {name} is {batch_size}, expected a multiple of {n} (the devices "
                         f"of devices=, which each take {name} / {n} samples)")


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """The leading (sample) axis is split over ``"batch"``; the other axes are whole."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def replicate(tree, mesh: Mesh):
    """Copy every leaf of `tree` onto every device of `mesh` (jax arrays and NumPy arrays alike)."""
    return _place(tree, replicated(mesh))


def split(tree, mesh: Mesh):
    """Split every leaf of `tree` along its leading axis over ``"batch"`` (`fnn.multi.fit_many`'s
    models: device i of n holds models i*M/n ... (i+1)*M/n - 1)."""
    return _place(tree, batch_sharded(mesh))


def _place(tree, sharding: NamedSharding):
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def put(a):  # several processes: each holds the same global value, gives its devices their part
        if isinstance(a, jax.Array) and a.sharding == sharding:  # there already (a step's output)
            return a
        if isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(a)), impl=jax.random.key_impl(a))
        host = np.asarray(to_host(a))
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])
    return jax.tree_util.tree_map(put, tree)


def on_mesh(fn, mesh: Mesh | None):
    """`fn` (jitted) with every argument first copied onto every device of `mesh` (`replicate`;
    what is there already is passed as is, so donation still reuses its buffers). None: `fn`."""
    if mesh is None:
        return fn
    return lambda *args: fn(*replicate(args, mesh))


def shard_batch(tree, mesh: Mesh | None):
    """Inside `jit`: ask for each leaf of a mini-batch to be split over ``"batch"`` (None: as is)."""
    if mesh is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, batch_sharded(mesh))


def to_host(tree):
    """NumPy copies of the leaves of `tree`, whole even where no one process holds all of a leaf."""
    def get(a):
        if not isinstance(a, jax.Array) or a.is_fully_addressable:
            return jax.device_get(a)
        if a.is_fully_replicated:
            return np.asarray(a.addressable_data(0))
        return multihost_utils.process_allgather(a, tiled=True)
    return jax.tree_util.tree_map(get, tree)
