"""TensorFlow's oneDNN kernels are on in every process that trains, Ray's workers included; a user's choice wins."""

from __future__ import annotations

import os
import subprocess
import sys

from clusters import local_cluster

PROBE = "from tensorflow.python.util import _pywrap_util_port; print(_pywrap_util_port.IsMklEnabled())"


def _onednn_in_a_fresh_process(env: dict[str, str]) -> str:
    """Import our package, then ask TensorFlow whether its oneDNN kernels are on."""
    code = f"import search; {PROBE}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_on_by_default_and_a_users_setting_wins():
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    assert _onednn_in_a_fresh_process(env) == "True"
    assert _onednn_in_a_fresh_process({**env, "TF_ENABLE_ONEDNN_OPTS": "0"}) == "False"


DRIVER = """
import sys, ray
from search import connection
connection.connect(sys.argv[1])

@ray.remote(num_cpus=1)
def probe():
    # TensorFlow before anything of ours: the switch must already be in the worker's environment.
    import os
    from tensorflow.python.util import _pywrap_util_port

    return _pywrap_util_port.IsMklEnabled(), os.environ.get("TF_ENABLE_ONEDNN_OPTS")

print(ray.get(probe.remote()))
"""


def test_ray_workers_have_it_before_they_import_tensorflow():
    # Nodes started without the switch, as on a cluster whose machines never set it: only the job's
    # runtime_env (connection.connect) can bring it to their worker processes.
    plain = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    with local_cluster(workers=1, unset=("TF_ENABLE_ONEDNN_OPTS",)) as nodes:
        result = subprocess.run([sys.executable, "-c", DRIVER, nodes.address], capture_output=True, text=True,
                                timeout=300, env={**plain, **nodes.env})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "(True, '1')"
