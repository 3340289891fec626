"""What the benches share (imported after a bench has put sagewatch on sys.path): moto in-process with sagewatch's declared resources, and resident-memory
readings (now, sampled peak during a block, the process's high-water mark, another process's)."""

from __future__ import annotations

import contextlib
import os
import resource
import threading
from collections.abc import Iterator

# sagewatch is imported from where the importing bench put it on sys.path (bench/window.py --core)
from sagewatch import container
from sagewatch.local.emulator import serialize_dynamodb_requests
from sagewatch.local.provision import provision
from sagewatch.settings import environment_for, physical_names


@contextlib.contextmanager
def moto_stack(names: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """moto in-process with every declared resource (as the tests' `aws` fixture makes it), under
    `names` (physical_names("bench") when None); yields the created resources' names."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(key, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
    )
    serialize_dynamodb_requests()
    names = names or physical_names("bench")
    os.environ.update(environment_for(names))
    container.reset()
    from moto import mock_aws  # here: a measuring process that never starts moto never imports it

    with mock_aws():
        yield provision(names)
    container.reset()


def rss_mb() -> float:
    """The process's resident set now, in MB (Linux /proc)."""
    return process_rss_mb(os.getpid())


def process_rss_mb(pid: int) -> float:
    """A process's resident set now, in MB (Linux /proc)."""
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextlib.contextmanager
def peak_rss(every: float = 0.005) -> Iterator[list[float]]:
    """The highest resident set seen while the block runs (sampled every `every` s), in MB: [peak]."""
    found = [rss_mb()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every):
            found[0] = max(found[0], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield found
    finally:
        done.set()
        sampler.join()
        found[0] = max(found[0], rss_mb())


def process_peak_mb() -> float:
    """The process's high-water resident set (setup included), in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
