"""The core package must import without the notebook stack (jupyter, papermill, ipywidgets, seaborn)."""
from __future__ import annotations

import subprocess
import sys

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'IPython', 'ipywidgets', 'papermill', 'nbformat', 'jupyter_client',
                                  'ipykernel', 'jupytext', 'seaborn'}:
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
import coprop, coprop.cli, coprop.data, coprop.data.synth, coprop.metrics, coprop.pipeline, coprop.train
import coprop.models.keyframe, coprop.models.propagator, coprop.models.simultaneous
import coprop.controlpoints.detectors, coprop.controlpoints.annotate
print('ok')
"""


def test_core_package_imports_without_jupyter():
    out = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
