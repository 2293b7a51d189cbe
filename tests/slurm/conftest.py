"""The one-node SLURM cluster, started once for the tests that need it and stopped after them."""
import os
import shutil

import pytest

from tests.slurm.cluster import Cluster, ClusterUnavailable


@pytest.fixture(scope="session")
def slurm_cluster():
    """Starts the cluster (SLURM and munge must be installed: tests/slurm/install.sh, which .ci/run
    runs; the tests install nothing), and when the session ends stops every daemon it started and
    removes its folder. Where SLURM is missing the tests skip saying why, except in CI (CI=true),
    where they fail."""
    try:
        cluster = Cluster.start()
    except ClusterUnavailable as err:
        message = f"no SLURM test cluster: {err}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message} (CI must run the SLURM tests: .ci/run installs slurm-wlm and munge)")
        pytest.skip(message)
    yield cluster
    cluster.stop()
    assert not cluster.daemons_alive(), f"SLURM daemons still running after stop_cluster.sh: {cluster.daemons_alive()}"
    shutil.rmtree(cluster.folder)  # kept where the stop failed: its logs say why
