"""TensorFlow's oneDNN kernels are on in every process that trains, Ray's workers included; a user's choice wins."""

from __future__ import annotations

import os
import subprocess
import sys

from clusters import local_cluster

PROBE = "from tensorflow.python.util import _pywrap_util_port; print(_pywrap_util_port.IsMklEnabled())"


def _in_a_fresh_process(code: str, env: dict[str, str]) -> str:
    """Import our package, then run code: what it printed."""
    result = subprocess.run([sys.executable, "-c", f"import search; {code}"], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_on_by_default_and_a_users_setting_wins():
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    assert _in_a_fresh_process(PROBE, env) == "True"
    # A user's "0" is left as it is, which TensorFlow then honours (its own switch; asking it costs an import).
    assert _in_a_fresh_process("import os; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])",
                               {**env, "TF_ENABLE_ONEDNN_OPTS": "0"}) == "0"


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
