# SPDX-License-Identifier: Apache-2.0
import importlib
import os
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from busclient import Busrtd  # noqa: E402


@pytest.fixture
def broker():
    with Busrtd() as b:
        yield b


@pytest.fixture(scope="session")
def pb():
    """The Python classes protoc generates from proto/daemoneye.proto."""
    root = os.path.join(os.path.dirname(__file__), "..")
    out = tempfile.mkdtemp(prefix="pb", dir="/tmp")
    subprocess.run(["protoc", f"--proto_path={root}/proto", f"--python_out={out}",
                    "daemoneye.proto"], check=True)
    sys.path.insert(0, out)
    try:
        return importlib.import_module("daemoneye_pb2")
    finally:
        sys.path.remove(out)
