"""Multi-process (multi-host) runs: `jax.distributed.initialize` behind checked arguments.

Every process runs the same program and calls `initialize` first, before anything touches a
device; afterwards `jax.devices()` lists the devices of all processes and the data-parallel
steps of `ladsg_jax.vfl.parallel` reduce over all of them, each process feeding its own part
of every batch (https://docs.jax.dev/en/latest/multi_process.html).

    parser = argparse.ArgumentParser()
    add_distributed_arguments(parser)        # --coordinator --num-processes --process-id
    args = parser.parse_args()
    initialize_from_args(args)               # does nothing without --coordinator

On the CPU, cross-process collectives need an implementation: JAX 0.10 uses Gloo over TCP by
default (`jax_cpu_collectives_implementation`, "gloo"); `initialize` selects it when the option
is unset and leaves any other choice (e.g. "mpi") alone.
"""
from __future__ import annotations

import argparse

from ladsg_jax.errors import ConfigError, positive_int, require

PORTS = (1, 65535)


def parse_coordinator(address: str) -> tuple[str, int]:
    """(host, port) of a "host:port" coordinator address ("[v6 address]:port" for IPv6)."""
    require(isinstance(address, str) and ":" in address, "coordinator",
            f"must be host:port (e.g. 10.0.0.1:1234), got {address!r}")
    host, port = address.rsplit(":", 1)
    require(host not in ("", "[]"), "coordinator",
            f"must name a host before the port, got {address!r}")
    require(port.isdigit() and PORTS[0] <= int(port) <= PORTS[1], "coordinator",
            f"port must be an integer in {PORTS[0]}..{PORTS[1]}, got {port!r} in {address!r}")
    return host, int(port)


def check_processes(num_processes: int, process_id: int) -> None:
    """Raises `ConfigError` unless num_processes ≥ 1 and 0 ≤ process_id < num_processes."""
    positive_int("num_processes", num_processes)
    require(isinstance(process_id, int) and not isinstance(process_id, bool)
            and 0 <= process_id < num_processes, "process_id",
            f"must be an integer in 0..{num_processes - 1} (num_processes {num_processes}), "
            f"got {process_id!r}")


def initialize(coordinator: str, num_processes: int, process_id: int,
               local_device_ids=None, timeout: int = 300) -> None:
    """Joins this process to a run of `num_processes` processes.

    `coordinator` is "host:port" of process 0, where it starts the coordination service (the
    same string on every process); `process_id` is this process's rank. Checks the arguments
    (`ConfigError` naming the field), selects Gloo CPU collectives when none are chosen, then
    calls `jax.distributed.initialize`, which blocks until all processes have joined or
    `timeout` seconds pass, and raises `RuntimeError` if any JAX computation already ran.
    """
    parse_coordinator(coordinator)
    check_processes(num_processes, process_id)
    import jax

    if jax.config.jax_cpu_collectives_implementation is None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id, local_device_ids=local_device_ids,
                               initialization_timeout=timeout)


def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds --coordinator, --num-processes and --process-id (a group "multi-process")."""
    group = parser.add_argument_group(
        "multi-process", "run as one of several processes (jax.distributed); all three together")
    group.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                       help="process 0's address and a free port, the same on every process")
    group.add_argument("--num-processes", type=int, default=None, metavar="N",
                       help="how many processes take part")
    group.add_argument("--process-id", type=int, default=None, metavar="I",
                       help="this process's rank, 0..N-1")


def initialize_from_args(args: argparse.Namespace) -> bool:
    """Calls `initialize` with the options of `add_distributed_arguments`; returns whether it
    did. None of them given: a single-process run. Some but not all: `ConfigError`."""
    values = {"coordinator": args.coordinator, "num_processes": args.num_processes,
              "process_id": args.process_id}
    given = [name for name, value in values.items() if value is not None]
    if not given:
        return False
    missing = [name for name in values if name not in given]
    if missing:
        raise ConfigError(missing[0], f"a multi-process run needs --coordinator, "
                                      f"--num-processes and --process-id together; missing "
                                      f"{', '.join('--' + m.replace('_', '-') for m in missing)}")
    initialize(**values)
    return True


__all__ = ["initialize", "parse_coordinator", "check_processes", "add_distributed_arguments",
           "initialize_from_args"]
