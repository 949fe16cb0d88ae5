"""Multi-process runs (ladsg_jax/distributed.py): checked arguments, and two processes on
127.0.0.1, each with 2 CPU devices and half of every batch, end where one process training on
the whole batches ends."""
import argparse
import socket
import subprocess

import jax
import numpy as np
import pytest

from ladsg_jax.distributed import (add_distributed_arguments, check_processes, initialize,
                                   initialize_from_args, parse_coordinator)
from ladsg_jax.errors import ConfigError
from ladsg_jax.vfl.train import make_trainer
from parallel_worker import (STRATEGIES, compared, multihost_setting, named_leaves, run_steps,
                             start)

PROCESSES, DEVICES = 2, 2


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1:1234", ("127.0.0.1", 1234)), ("node-3.cluster:65535", ("node-3.cluster", 65535)),
    ("[::1]:8476", ("[::1]", 8476))])
def test_coordinator_addresses(address, expected):
    assert parse_coordinator(address) == expected


@pytest.mark.parametrize("address", ["127.0.0.1", ":1234", "host:", "host:http", "host:0",
                                     "host:70000", 1234])
def test_bad_coordinator_addresses_name_the_field(address):
    with pytest.raises(ConfigError, match="^coordinator: "):
        parse_coordinator(address)


@pytest.mark.parametrize("num_processes, process_id, field", [
    (0, 0, "num_processes"), (2, 2, "process_id"), (2, -1, "process_id"),
    (2, "0", "process_id"), (True, 0, "num_processes")])
def test_bad_process_numbers_name_the_field(num_processes, process_id, field):
    with pytest.raises(ConfigError, match=f"^{field}: "):
        check_processes(num_processes, process_id)
    with pytest.raises(ConfigError, match=f"^{field}: "):     # before JAX is touched
        initialize("127.0.0.1:1234", num_processes, process_id)


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_distributed_arguments(parser)
    return parser.parse_args(argv)


def test_command_line_options():
    args = parse("--coordinator", "10.0.0.1:1234", "--num-processes", "4", "--process-id", "3")
    assert (args.coordinator, args.num_processes, args.process_id) == ("10.0.0.1:1234", 4, 3)
    assert initialize_from_args(parse()) is False                 # a single-process run
    with pytest.raises(ConfigError, match="^num_processes: .*--num-processes, --process-id"):
        initialize_from_args(parse("--coordinator", "10.0.0.1:1234"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """What each of the two processes saved after its last step."""
    folder, port = tmp_path_factory.mktemp("multihost"), free_port()
    outs = [folder / f"process_{i}.npz" for i in range(PROCESSES)]
    children = [start("multihost", DEVICES, "--coordinator", f"127.0.0.1:{port}",
                      "--num-processes", str(PROCESSES), "--process-id", str(i),
                      "--out", str(out)) for i, out in enumerate(outs)]
    try:
        errors = [child.communicate(timeout=240)[1] for child in children]
    except subprocess.TimeoutExpired:       # e.g. one died and the other waits for it
        for child in children:
            child.kill()
        errors = [child.communicate()[1] for child in children]
    report = "\n".join(f"process {i} (exit {child.returncode}):\n{err[-3000:]}"
                       for i, (child, err) in enumerate(zip(children, errors)))
    assert all(child.returncode == 0 for child in children), report
    return [dict(np.load(out)) for out in outs]


@pytest.mark.slow
def test_two_processes_see_all_four_devices(saved):
    for process in saved:
        assert int(process["process_count"]) == PROCESSES
        assert int(process["device_count"]) == PROCESSES * DEVICES


@pytest.mark.slow
def test_two_processes_end_where_one_process_on_whole_batches_ends(saved):
    """After 3 steps of each strategy (LADSG's default, whose cut gathers the messages of all
    four devices across both processes): the state and metrics, and each process's rows of the
    messages, equal one process's jitted single-device step on the whole batches."""
    data, config, state, indices = multihost_setting()
    step = jax.jit(make_trainer(config).step_on_indices)
    last = compared(run_steps(lambda s, i: step(s, data, i), state, indices)[-1])
    rows = indices.shape[1] // PROCESSES
    for process, values in enumerate(saved):
        own = {**last, "messages": [m[process * rows:(process + 1) * rows]
                                    for m in last["messages"]]}
        for strategy in STRATEGIES:
            expected = named_leaves(strategy, own)
            assert set(expected) <= set(values)
            for name, value in expected.items():
                np.testing.assert_allclose(values[name], value, rtol=1e-5, atol=1e-7,
                                           err_msg=name)
                if "messages" not in name:      # replicated: the same on every process
                    np.testing.assert_array_equal(values[name], saved[0][name], err_msg=name)
